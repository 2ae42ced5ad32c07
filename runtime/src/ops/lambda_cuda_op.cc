// Lambda on onnxruntime's CUDA execution provider (kernels: runtime/src/cuda).
#include "cuda/launch.h"
#include "ops/cuda_glue.h"
#include "ops/lambda.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

// The launcher's device workspace, stream-ordered: allocated and freed on the node's stream (cudaMallocAsync), so
// nothing waits; where the device has no memory pools, a plain allocation freed after the stream drained.
Ort::Status LaunchWithWorkspace(const kernels::LambdaParams& params, const FloatTensor& q, const FloatTensor& keys,
                                const FloatTensor& values, const FloatTensor& position, float* out,
                                cudaStream_t stream) {
  const char* op = contract::lambda_layer::kOpName;
  const size_t bytes = kernels::cuda::lambda_workspace_bytes(params);
  void* workspace = nullptr;
  cudaError_t error = cudaMallocAsync(&workspace, bytes, stream);
  const bool stream_ordered = error == cudaSuccess;
  if (!stream_ordered) {
    cudaGetLastError();  // clear the failed pool allocation before the fallback
    error = cudaMalloc(&workspace, bytes);
    if (error != cudaSuccess) return CudaStatus(op, error);
  }
  error = kernels::cuda::launch_lambda(params, q.Data(), keys.Data(), values.Data(), position.Data(), out, workspace,
                                       bytes, stream);
  if (stream_ordered) {
    const cudaError_t freed = cudaFreeAsync(workspace, stream);
    return CudaStatus(op, error != cudaSuccess ? error : freed);
  }
  const cudaError_t drained = cudaStreamSynchronize(stream);
  const cudaError_t freed = cudaFree(workspace);
  return CudaStatus(op, error != cudaSuccess ? error : drained != cudaSuccess ? drained : freed);
}

struct LambdaCudaKernel : LambdaNode {
  using LambdaNode::LambdaNode;

  static Ort::Status Call(LambdaCudaKernel& kernel, OrtKernelContext* context) { return CallLambda(kernel, context); }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& q, const FloatTensor& keys,
                      const FloatTensor& values, const FloatTensor& position, FloatTensor& y) {
    kernels::LambdaParams params;
    Ort::Status status = Prepare(q.Shape(), keys.Shape(), values.Shape(), position.Shape(), params);
    if (!status.IsOK()) return status;
    float* out = y.Allocate(OutputShape(params));
    return LaunchWithWorkspace(params, q, keys, values, position, out, ComputeStream(context));
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeLambdaCudaOp() {
  return MakeLiteOp<LambdaCudaKernel>(contract::lambda_layer::kOpName, "CUDAExecutionProvider");
}

}  // namespace holocron::ops
