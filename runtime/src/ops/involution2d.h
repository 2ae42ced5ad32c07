// The device-independent half of the Involution2d glue: attributes read once per node, input validation into
// kernels::Involution2dParams, shape inference.
#pragma once
#include <string>

#include "holocron_contract.h"
#include "kernels/params.h"
#include "ops/glue.h"
#include "ops/lite_op.h"
#include "ops/ort_api.h"
#include "ops/validation.h"

namespace holocron::ops {

class Involution2dNode {
 public:
  Involution2dNode(const OrtApi* api, const OrtKernelInfo* info);

  Ort::Status Prepare(const Shape& x, const Shape& kernel, kernels::Involution2dParams& params) const;

  static Ort::Status InferShape(const OrtApi& api, OrtShapeInferContext* context) noexcept;

 private:
  Involution2dAttributes attributes_;
  std::string attribute_error_;  // reported by every call: kernel creation has no error channel
};

// Fetches one call's inputs and runs kernel.Compute(context, X, K, Y).
template <typename Kernel>
Ort::Status CallInvolution2d(Kernel& kernel, OrtKernelContext* context) noexcept {
  using FloatTensor = Ort::Custom::Tensor<float>;
  return Guarded(contract::involution2d::kOpName, [&]() -> Ort::Status {
    Ort::Status status = RequireInputs(context, contract::involution2d::kOpName, {"X", "K"});
    if (!status.IsOK()) return status;
    FloatTensor x(context, 0, true), k(context, 1, true), y(context, 0, false);
    return kernel.Compute(context, x, k, y);
  });
}

}  // namespace holocron::ops
