// Add2d on onnxruntime's CPU execution provider.
#include "holocron_contract.h"
#include "kernels/cpu.h"
#include "ops/add2d.h"
#include "ops/glue.h"
#include "ops/lite_op.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct Add2dCpuKernel : Add2dNode {
  using Add2dNode::Add2dNode;

  static Ort::Status Call(Add2dCpuKernel& kernel, OrtKernelContext* context) {
    return Guarded(contract::add2d::kOpName, [&]() -> Ort::Status {
      Ort::Status status = RequireInputs(context, contract::add2d::kOpName, {"X", "W"});
      if (!status.IsOK()) return status;
      FloatTensor x(context, 0, true), w(context, 1, true), y(context, 0, false);
      std::optional<FloatTensor> bias;
      if (HasInput(context, 2)) bias.emplace(context, 2, true);
      return kernel.Compute(context, x, w, bias ? std::optional<const FloatTensor*>(&*bias) : std::nullopt, y);
    });
  }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& x, const FloatTensor& w,
                      std::optional<const FloatTensor*> bias, FloatTensor& y) {
    return Guarded(contract::add2d::kOpName, [&]() -> Ort::Status {
      const FloatTensor* b = bias.value_or(nullptr);
      kernels::Add2dParams params;
      Ort::Status status = Prepare(x.Shape(), w.Shape(), b != nullptr ? &b->Shape() : nullptr, params);
      if (!status.IsOK()) return status;
      float* out = y.Allocate(OutputShape(params));
      const Ort::KernelContext ctx(context);
      kernels::Add2dCpu(params, x.Data(), w.Data(), b != nullptr ? b->Data() : nullptr, out, IntraOpPool(ctx));
      return Ort::Status{nullptr};
    });
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeAdd2dCpuOp() {
  return MakeLiteOp<Add2dCpuKernel>(contract::add2d::kOpName, "CPUExecutionProvider");
}

}  // namespace holocron::ops
