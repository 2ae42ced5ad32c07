// Involution2d on onnxruntime's CUDA execution provider (kernels: runtime/src/cuda).
#include "cuda/launch.h"
#include "ops/cuda_glue.h"
#include "ops/involution2d.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct Involution2dCudaKernel : Involution2dNode {
  using Involution2dNode::Involution2dNode;

  static Ort::Status Call(Involution2dCudaKernel& kernel, OrtKernelContext* context) {
    return CallInvolution2d(kernel, context);
  }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& x, const FloatTensor& kernel, FloatTensor& y) {
    kernels::Involution2dParams params;
    Ort::Status status = Prepare(x.Shape(), kernel.Shape(), params);
    if (!status.IsOK()) return status;
    float* out = y.Allocate(OutputShape(params));
    return CudaStatus(contract::involution2d::kOpName,
                      kernels::cuda::launch_involution2d(params, x.Data(), kernel.Data(), out, ComputeStream(context)));
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeInvolution2dCudaOp() {
  return MakeLiteOp<Involution2dCudaKernel>(contract::involution2d::kOpName, "CUDAExecutionProvider");
}

}  // namespace holocron::ops
