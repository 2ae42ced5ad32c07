// The one way the CPU kernels run work in parallel: a callback that runs task(state, i) for every i in
// [0, count), possibly on several threads, and returns when all are done. The onnxruntime glue passes one that
// forwards to the session's intra-op thread pool (KernelContext_ParallelFor), so intra_op_num_threads governs the
// kernels; tests and tools can pass ParallelFor::Serial(). Tasks never throw.
#pragma once
#include <cstddef>

namespace holocron::kernels {

class ParallelFor {
 public:
  using Task = void (*)(void* state, std::size_t index);
  using Launcher = void (*)(const void* pool, Task task, std::size_t count, void* state);

  constexpr ParallelFor(Launcher launcher, const void* pool) : launcher_(launcher), pool_(pool) {}

  // Runs every task on the calling thread, in order.
  static constexpr ParallelFor Serial() { return ParallelFor(&RunSerially, nullptr); }

  // Calls body(i) for every i in [0, count).
  template <typename Body>
  void operator()(std::size_t count, const Body& body) const {
    if (count == 0) return;
    if (count == 1) {
      body(std::size_t{0});
      return;
    }
    launcher_(pool_, &Trampoline<Body>, count, const_cast<void*>(static_cast<const void*>(&body)));
  }

 private:
  template <typename Body>
  static void Trampoline(void* state, std::size_t index) {
    (*static_cast<const Body*>(state))(index);
  }

  static void RunSerially(const void*, Task task, std::size_t count, void* state) {
    for (std::size_t i = 0; i < count; ++i) task(state, i);
  }

  Launcher launcher_;
  const void* pool_;
};

}  // namespace holocron::kernels
