// Pieces every op's onnxruntime glue shares: statuses from validation messages and exceptions, input shapes, and
// the intra-op thread pool as a kernels::ParallelFor.
#pragma once
#include <exception>
#include <new>
#include <string>

#include "kernels/parallel.h"
#include "ops/ort_api.h"
#include "ops/validation.h"

namespace holocron::ops {

inline Ort::Status InvalidArgument(const std::string& message) {
  return Ort::Status(message.c_str(), ORT_INVALID_ARGUMENT);
}

// Runs body (returning Ort::Status) and turns any exception into a status naming the op: nothing may unwind into
// onnxruntime.
template <typename Body>
Ort::Status Guarded(const char* op, const Body& body) noexcept {
  try {
    return body();
  } catch (const Ort::Exception& e) {
    return Ort::Status((std::string(op) + ": " + e.what()).c_str(), e.GetOrtErrorCode());
  } catch (const std::bad_alloc&) {
    return Ort::Status((std::string(op) + ": out of memory").c_str(), ORT_FAIL);
  } catch (const std::exception& e) {
    return Ort::Status((std::string(op) + ": " + e.what()).c_str(), ORT_FAIL);
  } catch (...) {
    return Ort::Status((std::string(op) + ": unknown error").c_str(), ORT_FAIL);
  }
}

// onnxruntime's intra-op thread pool of this kernel call (serial when the session has one thread).
inline kernels::ParallelFor IntraOpPool(const Ort::KernelContext& context) {
  return kernels::ParallelFor(
      [](const void* pool, kernels::ParallelFor::Task task, size_t count, void* state) {
        static_cast<const Ort::KernelContext*>(pool)->ParallelFor(task, count, 0, state);
      },
      &context);
}

}  // namespace holocron::ops
