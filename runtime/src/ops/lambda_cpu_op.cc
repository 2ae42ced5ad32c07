// Lambda on onnxruntime's CPU execution provider.
#include "kernels/cpu.h"
#include "ops/lambda.h"
#include "ops/ops.h"

namespace holocron::ops {
namespace {

using FloatTensor = Ort::Custom::Tensor<float>;

struct LambdaCpuKernel : LambdaNode {
  using LambdaNode::LambdaNode;

  static Ort::Status Call(LambdaCpuKernel& kernel, OrtKernelContext* context) { return CallLambda(kernel, context); }

  Ort::Status Compute(OrtKernelContext* context, const FloatTensor& q, const FloatTensor& keys,
                      const FloatTensor& values, const FloatTensor& position, FloatTensor& y) {
    kernels::LambdaParams params;
    Ort::Status status = Prepare(q.Shape(), keys.Shape(), values.Shape(), position.Shape(), params);
    if (!status.IsOK()) return status;
    float* out = y.Allocate(OutputShape(params));
    const Ort::KernelContext ctx(context);
    kernels::LambdaCpu(params, q.Data(), keys.Data(), values.Data(), position.Data(), out, IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
};

}  // namespace

std::shared_ptr<OrtCustomOp> MakeLambdaCpuOp() {
  return MakeLiteOp<LambdaCpuKernel>(contract::lambda_layer::kOpName, "CPUExecutionProvider");
}

}  // namespace holocron::ops
