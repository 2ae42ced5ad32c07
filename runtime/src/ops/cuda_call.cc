#include "ops/cuda_call.h"

#if HOLOCRON_WITH_CUDA
#include <cstdlib>
#include <cstring>
#include <string>

namespace holocron::ops {
namespace {

bool SyncCheckEnabled() {
  static const bool enabled = [] {
    const char* value = std::getenv(kCudaSyncCheckEnv);
    return value != nullptr && std::strcmp(value, "1") == 0;
  }();
  return enabled;
}

}  // namespace

Ort::Status CudaStatus(const char* op, cudaError_t error, const char* where) {
  if (error == cudaSuccess) return Ort::Status{nullptr};
  std::string message = std::string(op) + ": CUDA error " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error);
  if (where != nullptr) message += std::string(" (") + where + ")";
  return Ort::Status(message.c_str(), ORT_EP_FAIL);
}

CudaCall::CudaCall(OrtKernelContext* context, const char* op, const std::vector<int64_t>& output_shape)
    : context_(context), op_(op) {
  const Ort::KernelContext ctx(context);
  // onnxruntime hands back the output already allocated for this shape.
  memory_info_ = ctx.GetOutput(0, output_shape).GetTensorMemoryInfo();
  stream_ = static_cast<cudaStream_t>(ctx.GetGPUComputeStream());
  const int device = memory_info_.GetDeviceId();
  int current = -1;
  if (const cudaError_t error = cudaGetDevice(&current); error != cudaSuccess) {
    cudaGetLastError();
    throw Ort::Exception(CudaStatus(op, error, "cudaGetDevice").GetErrorMessage(), ORT_EP_FAIL);
  }
  if (current != device) {
    if (const cudaError_t error = cudaSetDevice(device); error != cudaSuccess) {
      cudaGetLastError();
      throw Ort::Exception(CudaStatus(op, error, "cudaSetDevice to the output's device").GetErrorMessage(),
                           ORT_EP_FAIL);
    }
    previous_device_ = current;
  }
}

CudaCall::~CudaCall() {
  if (scratch_ != nullptr) allocator_->Free(allocator_, scratch_);
  if (allocator_ != nullptr) Ort::GetApi().ReleaseAllocator(allocator_);
  if (previous_device_ >= 0) cudaSetDevice(previous_device_);
}

void* CudaCall::Scratch(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (scratch_ != nullptr) throw Ort::Exception("CudaCall::Scratch called twice", ORT_FAIL);
  // Free needs the allocator that onnxruntime's scratch buffer came from: the one of the output's memory info.
  allocator_ = Ort::KernelContext(context_).GetAllocator(*static_cast<const OrtMemoryInfo*>(memory_info_));
  Ort::ThrowOnError(Ort::GetApi().KernelContext_GetScratchBuffer(context_, memory_info_, bytes, &scratch_));
  if (scratch_ == nullptr) throw Ort::Exception("onnxruntime's scratch buffer is null", ORT_FAIL);
  return scratch_;
}

Ort::Status CudaCall::Finish(cudaError_t launched) const {
  if (launched != cudaSuccess) return CudaStatus(op_, launched, "launching its kernels");
  if (!SyncCheckEnabled()) return Ort::Status{nullptr};
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (const cudaError_t error = cudaStreamIsCapturing(stream_, &capture); error != cudaSuccess) {
    return CudaStatus(op_, error, "cudaStreamIsCapturing, HOLOCRON_CUDA_SYNC_CHECK=1");
  }
  if (capture != cudaStreamCaptureStatusNone) return Ort::Status{nullptr};  // waiting would break the capture
  if (const cudaError_t error = cudaStreamSynchronize(stream_); error != cudaSuccess) {
    return CudaStatus(op_, error, "while its kernels ran, found by HOLOCRON_CUDA_SYNC_CHECK=1");
  }
  return CudaStatus(op_, cudaGetLastError(), "after its kernels ran, found by HOLOCRON_CUDA_SYNC_CHECK=1");
}

}  // namespace holocron::ops
#endif  // HOLOCRON_WITH_CUDA
