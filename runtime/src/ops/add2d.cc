#include "ops/add2d.h"

#include "holocron_contract.h"
#include "ops/glue.h"
#include "ops/shape_inference.h"

namespace holocron::ops {

namespace {
constexpr const char* kOp = contract::add2d::kOpName;
}  // namespace

Add2dNode::Add2dNode(const OrtApi* api, const OrtKernelInfo* info) {
  attribute_error_ = ReadAttributes(KernelInfoAttributes(*api, info), attributes_);
}

Ort::Status Add2dNode::Prepare(const Shape& x, const Shape& w, const Shape* bias, kernels::Add2dParams& params) const {
  if (!attribute_error_.empty()) return InvalidArgument(attribute_error_);
  const std::string error = MakeParams(attributes_, x, w, bias, params);
  return error.empty() ? Ort::Status{nullptr} : InvalidArgument(error);
}

Ort::Status Add2dNode::InferShape(const OrtApi& api, OrtShapeInferContext* context) noexcept {
  return Guarded(kOp, [&]() -> Ort::Status {
    Add2dAttributes attributes;
    std::string error = ReadAttributes(ShapeInferAttributes(api, context), attributes);
    if (!error.empty()) return InvalidArgument(error);
    const std::optional<InferredShape> x = InferredInput(api, context, 0);
    const std::optional<InferredShape> w = InferredInput(api, context, 1);
    const std::optional<InferredShape> bias = InferredInput(api, context, 2);
    if (!x || !w) return Ort::Status{nullptr};
    // Validate with the batch set aside: it may be symbolic, and it is copied to the output as it is.
    InferredShape x_rest = *x;
    if (!x_rest.empty()) x_rest[0].value = 1;
    Shape x_values, w_values, b_values;
    if (!KnownValues(x_rest, x_values) || !KnownValues(*w, w_values)) return Ort::Status{nullptr};
    const bool bias_known = bias && KnownValues(*bias, b_values);
    if (bias && !bias_known) return Ort::Status{nullptr};
    kernels::Add2dParams params;
    error = MakeParams(attributes, x_values, w_values, bias_known ? &b_values : nullptr, params);
    if (!error.empty()) return InvalidArgument(error);
    const Shape out = OutputShape(params);
    return DeclareOutput(api, context, 0, {(*x)[0], {out[1], {}}, {out[2], {}}, {out[3], {}}});
  });
}

}  // namespace holocron::ops
