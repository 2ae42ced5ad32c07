// Add2d on onnxruntime's CUDA execution provider (kernels: runtime/src/cuda).
#include "cuda/launch.h"
#include "ops/add2d.h"
#include "ops/cuda_glue.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct Add2dCudaKernel : Add2dNode {
  using Add2dNode::Add2dNode;

  static Ort::Status Call(Add2dCudaKernel& kernel, OrtKernelContext* context) { return CallAdd2d(kernel, context); }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& x, const FloatTensor& w,
                      std::optional<const FloatTensor*> bias, FloatTensor& y) {
    const FloatTensor* b = bias.value_or(nullptr);
    kernels::Add2dParams params;
    Ort::Status status = Prepare(x.Shape(), w.Shape(), b != nullptr ? &b->Shape() : nullptr, params);
    if (!status.IsOK()) return status;
    float* out = y.Allocate(OutputShape(params));
    return CudaStatus(contract::add2d::kOpName,
                      kernels::cuda::launch_add2d(params, x.Data(), w.Data(), b != nullptr ? b->Data() : nullptr, out,
                                                  ComputeStream(context)));
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeAdd2dCudaOp() {
  return MakeLiteOp<Add2dCudaKernel>(contract::add2d::kOpName, "CUDAExecutionProvider");
}

}  // namespace holocron::ops
