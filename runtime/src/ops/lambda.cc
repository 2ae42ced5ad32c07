#include "ops/lambda.h"

#include <array>

#include "holocron_contract.h"
#include "ops/glue.h"
#include "ops/shape_inference.h"

namespace holocron::ops {

LambdaNode::LambdaNode(const OrtApi* api, const OrtKernelInfo* info) {
  attribute_error_ = ReadAttributes(KernelInfoAttributes(*api, info), attributes_);
}

Ort::Status LambdaNode::Prepare(const Shape& q, const Shape& keys, const Shape& values, const Shape& position,
                                kernels::LambdaParams& params) const {
  if (!attribute_error_.empty()) return InvalidArgument(attribute_error_);
  const std::string error = MakeParams(attributes_, q, keys, values, position, params);
  return error.empty() ? Ort::Status{nullptr} : InvalidArgument(error);
}

Ort::Status LambdaNode::InferShape(const OrtApi& api, OrtShapeInferContext* context) noexcept {
  return Guarded(contract::lambda_layer::kOpName, [&]() -> Ort::Status {
    LambdaAttributes attributes;
    std::string error = ReadAttributes(ShapeInferAttributes(api, context), attributes);
    if (!error.empty()) return InvalidArgument(error);
    std::array<Shape, 4> values;
    std::optional<InferredShape> q;
    for (size_t i = 0; i < values.size(); ++i) {
      std::optional<InferredShape> shape = InferredInput(api, context, i);
      if (!shape) return Ort::Status{nullptr};
      if (i == 0) q = shape;
      // Q, Kx and V share a batch that may be symbolic: validate with batch 1 and copy Q's to the output.
      if (i < 3 && !shape->empty() && !(*shape)[0].known()) (*shape)[0] = {1, {}};
      if (!KnownValues(*shape, values[i])) return Ort::Status{nullptr};
    }
    kernels::LambdaParams params;
    error = MakeParams(attributes, values[0], values[1], values[2], values[3], params);
    if (!error.empty()) return InvalidArgument(error);
    const Shape out = OutputShape(params);
    return DeclareOutput(api, context, 0, {(*q)[0], {out[1], {}}, {out[2], {}}, {out[3], {}}});
  });
}

}  // namespace holocron::ops
