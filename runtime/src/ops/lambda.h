// The device-independent half of the Lambda glue: attributes read once per node, input validation into
// kernels::LambdaParams, shape inference.
#pragma once
#include <string>

#include "holocron_contract.h"
#include "kernels/params.h"
#include "ops/glue.h"
#include "ops/lite_op.h"
#include "ops/ort_api.h"
#include "ops/validation.h"

namespace holocron::ops {

class LambdaNode {
 public:
  LambdaNode(const OrtApi* api, const OrtKernelInfo* info);

  Ort::Status Prepare(const Shape& q, const Shape& keys, const Shape& values, const Shape& position,
                      kernels::LambdaParams& params) const;

  static Ort::Status InferShape(const OrtApi& api, OrtShapeInferContext* context) noexcept;

 private:
  LambdaAttributes attributes_;
  std::string attribute_error_;  // reported by every call: kernel creation has no error channel
};

// Fetches one call's inputs and runs kernel.Compute(context, Q, Kx, V, P, Y).
template <typename Kernel>
Ort::Status CallLambda(Kernel& kernel, OrtKernelContext* context) noexcept {
  using FloatTensor = Ort::Custom::Tensor<float>;
  return Guarded(contract::lambda_layer::kOpName, [&]() -> Ort::Status {
    Ort::Status status = RequireInputs(context, contract::lambda_layer::kOpName, {"Q", "Kx", "V", "P"});
    if (!status.IsOK()) return status;
    FloatTensor q(context, 0, true), k(context, 1, true), v(context, 2, true), p(context, 3, true);
    FloatTensor y(context, 0, false);
    return kernel.Compute(context, q, k, v, p, y);
  });
}

}  // namespace holocron::ops
