// What the CUDA glue of every op shares: the compute stream onnxruntime runs the node on, and CUDA errors as
// onnxruntime statuses.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "ops/ort_api.h"

namespace holocron::ops {

// The node's CUDA stream (onnxruntime's compute stream for the CUDAExecutionProvider).
inline cudaStream_t ComputeStream(OrtKernelContext* context) {
  return static_cast<cudaStream_t>(Ort::KernelContext(context).GetGPUComputeStream());
}

inline Ort::Status CudaStatus(const char* op, cudaError_t error) {
  if (error == cudaSuccess) return Ort::Status{nullptr};
  const std::string message = std::string(op) + ": CUDA error " + cudaGetErrorName(error) + ": " +
                              cudaGetErrorString(error);
  return Ort::Status(message.c_str(), ORT_EP_FAIL);
}

}  // namespace holocron::ops
