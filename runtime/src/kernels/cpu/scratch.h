// Scratch memory of one kernel task. Tasks run on the runtime's pool threads, where an exception must not escape,
// so allocation failure is recorded in TaskFailures and rethrown by the calling thread once the tasks are done.
#pragma once
#include <atomic>
#include <cstddef>
#include <new>

namespace holocron::kernels {

// 64-byte aligned, uninitialized floats; data() is null when the allocation failed.
class Scratch {
 public:
  explicit Scratch(std::size_t floats)
      : data_(static_cast<float*>(::operator new(floats * sizeof(float) + kAlign, std::align_val_t{kAlign},
                                                 std::nothrow))) {}
  ~Scratch() { ::operator delete(data_, std::align_val_t{kAlign}); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  float* data() const { return data_; }

 private:
  static constexpr std::size_t kAlign = 64;
  float* data_;
};

class TaskFailures {
 public:
  void Record() { failed_.store(true, std::memory_order_relaxed); }
  void ThrowIfAny() const {
    if (failed_.load(std::memory_order_relaxed)) throw std::bad_alloc();
  }

 private:
  std::atomic<bool> failed_{false};
};

}  // namespace holocron::kernels
