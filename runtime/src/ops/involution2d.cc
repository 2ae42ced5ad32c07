#include "ops/involution2d.h"

#include "holocron_contract.h"
#include "ops/glue.h"
#include "ops/shape_inference.h"

namespace holocron::ops {

Involution2dNode::Involution2dNode(const OrtApi* api, const OrtKernelInfo* info) {
  attribute_error_ = ReadAttributes(KernelInfoAttributes(*api, info), attributes_);
}

Ort::Status Involution2dNode::Prepare(const Shape& x, const Shape& kernel, kernels::Involution2dParams& params) const {
  if (!attribute_error_.empty()) return InvalidArgument(attribute_error_);
  const std::string error = MakeParams(attributes_, x, kernel, params);
  return error.empty() ? Ort::Status{nullptr} : InvalidArgument(error);
}

Ort::Status Involution2dNode::InferShape(const OrtApi& api, OrtShapeInferContext* context) noexcept {
  return Guarded(contract::involution2d::kOpName, [&]() -> Ort::Status {
    Involution2dAttributes attributes;
    std::string error = ReadAttributes(ShapeInferAttributes(api, context), attributes);
    if (!error.empty()) return InvalidArgument(error);
    const std::optional<InferredShape> x = InferredInput(api, context, 0);
    const std::optional<InferredShape> kernel = InferredInput(api, context, 1);
    if (!x || !kernel) return Ort::Status{nullptr};
    Shape x_values, k_values;
    if (!KnownValues(*x, x_values) || !KnownValues(*kernel, k_values)) {
      // The batch may be symbolic: validate and infer the rest with batch 1, then copy it.
      InferredShape x_rest = *x, k_rest = *kernel;
      if (x_rest.empty() || k_rest.empty() || x_rest[0].symbol.empty() || x_rest[0].symbol != k_rest[0].symbol) {
        return Ort::Status{nullptr};
      }
      x_rest[0] = {1, {}};
      k_rest[0] = {1, {}};
      if (!KnownValues(x_rest, x_values) || !KnownValues(k_rest, k_values)) return Ort::Status{nullptr};
    }
    kernels::Involution2dParams params;
    error = MakeParams(attributes, x_values, k_values, params);
    if (!error.empty()) return InvalidArgument(error);
    const Shape out = OutputShape(params);
    return DeclareOutput(api, context, 0, {(*x)[0], {out[1], {}}, {out[2], {}}, {out[3], {}}});
  });
}

}  // namespace holocron::ops
