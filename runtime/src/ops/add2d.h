// The device-independent half of the Add2d glue: attributes read once per node, input validation into
// kernels::Add2dParams, shape inference. add2d_cpu_op.cc (and the CUDA glue) add the compute.
#pragma once
#include <optional>
#include <string>

#include "holocron_contract.h"
#include "kernels/params.h"
#include "ops/glue.h"
#include "ops/lite_op.h"
#include "ops/ort_api.h"
#include "ops/validation.h"

namespace holocron::ops {

class Add2dNode {
 public:
  Add2dNode(const OrtApi* api, const OrtKernelInfo* info);

  // Validates the inputs of one call (bias null when B is absent) against the node's attributes.
  Ort::Status Prepare(const Shape& x, const Shape& w, const Shape* bias, kernels::Add2dParams& params) const;

  static Ort::Status InferShape(const OrtApi& api, OrtShapeInferContext* context) noexcept;

 private:
  Add2dAttributes attributes_;
  std::string attribute_error_;  // reported by every call: kernel creation has no error channel
};

// Fetches one call's inputs (B may be absent or named "") and runs kernel.Compute(context, X, W, B, Y).
template <typename Kernel>
Ort::Status CallAdd2d(Kernel& kernel, OrtKernelContext* context) noexcept {
  using FloatTensor = Ort::Custom::Tensor<float>;
  return Guarded(contract::add2d::kOpName, [&]() -> Ort::Status {
    Ort::Status status = RequireInputs(context, contract::add2d::kOpName, {"X", "W"});
    if (!status.IsOK()) return status;
    FloatTensor x(context, 0, true), w(context, 1, true), y(context, 0, false);
    std::optional<FloatTensor> bias;
    if (HasInput(context, 2)) bias.emplace(context, 2, true);
    return kernel.Compute(context, x, w, bias ? std::optional<const FloatTensor*>(&*bias) : std::nullopt, y);
  });
}

}  // namespace holocron::ops
