// Add2d on onnxruntime's CPU execution provider.
#include "kernels/cpu.h"
#include "ops/add2d.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct Add2dCpuKernel : Add2dNode {
  using Add2dNode::Add2dNode;

  static Ort::Status Call(Add2dCpuKernel& kernel, OrtKernelContext* context) { return CallAdd2d(kernel, context); }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& x, const FloatTensor& w,
                      std::optional<const FloatTensor*> bias, FloatTensor& y) {
    const FloatTensor* b = bias.value_or(nullptr);
    kernels::Add2dParams params;
    Ort::Status status = Prepare(x.Shape(), w.Shape(), b != nullptr ? &b->Shape() : nullptr, params);
    if (!status.IsOK()) return status;
    float* out = y.Allocate(OutputShape(params));
    const Ort::KernelContext ctx(context);
    kernels::Add2dCpu(params, x.Data(), w.Data(), b != nullptr ? b->Data() : nullptr, out, IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeAdd2dCpuOp() {
  return MakeLiteOp<Add2dCpuKernel>(contract::add2d::kOpName, "CPUExecutionProvider");
}

}  // namespace holocron::ops
