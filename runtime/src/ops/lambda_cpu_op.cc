// Lambda on onnxruntime's CPU execution provider.
#include "holocron_contract.h"
#include "kernels/cpu.h"
#include "ops/glue.h"
#include "ops/lambda.h"
#include "ops/lite_op.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct LambdaCpuKernel : LambdaNode {
  using LambdaNode::LambdaNode;

  static Ort::Status Call(LambdaCpuKernel& kernel, OrtKernelContext* context) {
    return Guarded(contract::lambda_layer::kOpName, [&]() -> Ort::Status {
      Ort::Status status = RequireInputs(context, contract::lambda_layer::kOpName, {"Q", "Kx", "V", "P"});
      if (!status.IsOK()) return status;
      FloatTensor q(context, 0, true), k(context, 1, true), v(context, 2, true), p(context, 3, true);
      FloatTensor y(context, 0, false);
      return kernel.Compute(context, q, k, v, p, y);
    });
  }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& q, const FloatTensor& keys,
                      const FloatTensor& values, const FloatTensor& position, FloatTensor& y) {
    return Guarded(contract::lambda_layer::kOpName, [&]() -> Ort::Status {
      kernels::LambdaParams params;
      Ort::Status status = Prepare(q.Shape(), keys.Shape(), values.Shape(), position.Shape(), params);
      if (!status.IsOK()) return status;
      float* out = y.Allocate(OutputShape(params));
      const Ort::KernelContext ctx(context);
      kernels::LambdaCpu(params, q.Data(), keys.Data(), values.Data(), position.Data(), out, IntraOpPool(ctx));
      return Ort::Status{nullptr};
    });
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeLambdaCpuOp() {
  return MakeLiteOp<LambdaCpuKernel>(contract::lambda_layer::kOpName, "CPUExecutionProvider");
}

}  // namespace holocron::ops
