// Involution2d on onnxruntime's CPU execution provider.
#include "kernels/cpu.h"
#include "ops/involution2d.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct Involution2dCpuKernel : Involution2dNode {
  using Involution2dNode::Involution2dNode;

  static Ort::Status Call(Involution2dCpuKernel& kernel, OrtKernelContext* context) {
    return CallInvolution2d(kernel, context);
  }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& x, const FloatTensor& kernel, FloatTensor& y) {
    kernels::Involution2dParams params;
    Ort::Status status = Prepare(x.Shape(), kernel.Shape(), params);
    if (!status.IsOK()) return status;
    float* out = y.Allocate(OutputShape(params));
    const Ort::KernelContext ctx(context);
    kernels::Involution2dCpu(params, x.Data(), kernel.Data(), out, IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeInvolution2dCpuOp() {
  return MakeLiteOp<Involution2dCpuKernel>(contract::involution2d::kOpName, "CPUExecutionProvider");
}

}  // namespace holocron::ops
