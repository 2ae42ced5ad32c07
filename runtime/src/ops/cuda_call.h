// What a CUDA launcher of an op gets from onnxruntime for one call (CUDA builds only): the node's compute stream,
// the output's device made current, device scratch from onnxruntime's per-stream scratch buffer, and the status of
// the launch, naming the op.
//
// Nothing here allocates device memory outside onnxruntime's allocator (its arena and gpu_mem_limit apply) or waits
// for the GPU, so a call can be captured in a CUDA graph (enable_cuda_graph). The debug switch
// HOLOCRON_CUDA_SYNC_CHECK=1 (read once per process) makes every call wait for its stream and check for errors, so a
// fault inside a kernel is reported by the op that caused it rather than later by another node; it skips the wait
// while the stream is being captured.
#pragma once
#if HOLOCRON_WITH_CUDA
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/glue.h"

namespace holocron::ops {

inline constexpr const char* kCudaSyncCheckEnv = "HOLOCRON_CUDA_SYNC_CHECK";

// float16 data as the CUDA kernels take it (the same binary16 layout).
inline const __half* CudaHalf(const Half* data) { return reinterpret_cast<const __half*>(data); }
inline __half* CudaHalf(Half* data) { return reinterpret_cast<__half*>(data); }

// A status naming the op for a CUDA error; OK for cudaSuccess.
Ort::Status CudaStatus(const char* op, cudaError_t error, const char* where = nullptr);

// One call of an op on the CUDA execution provider. Construct it after the output is allocated (the output's
// memory info says which device the call runs on); launch on Stream(); return Finish(the launcher's error). The
// scratch buffer goes back to onnxruntime's allocator, and the previous current device is restored, on destruction:
// the allocator orders reuse of the memory after the work enqueued on the stream.
class CudaCall {
 public:
  CudaCall(OrtKernelContext* context, const char* op, const std::vector<int64_t>& output_shape);
  ~CudaCall();
  CudaCall(const CudaCall&) = delete;
  CudaCall& operator=(const CudaCall&) = delete;

  cudaStream_t Stream() const { return stream_; }

  // `bytes` of device memory on the output's device, usable by work on Stream() (null for 0 bytes). One per call.
  void* Scratch(size_t bytes);

  // The op's status after its launches: the launch error if any, else (HOLOCRON_CUDA_SYNC_CHECK=1) what waiting for
  // the stream and cudaGetLastError report.
  Ort::Status Finish(cudaError_t launched) const;

 private:
  OrtKernelContext* context_;
  const char* op_;
  Ort::ConstMemoryInfo memory_info_{nullptr};
  cudaStream_t stream_ = nullptr;
  int previous_device_ = -1;  // restored on destruction when it differs from the output's
  OrtAllocator* allocator_ = nullptr;
  void* scratch_ = nullptr;
};

}  // namespace holocron::ops
#endif  // HOLOCRON_WITH_CUDA
