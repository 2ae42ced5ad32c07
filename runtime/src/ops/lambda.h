// The device-independent half of the Lambda glue: attributes read once per node, input validation into
// kernels::LambdaParams, shape inference.
#pragma once
#include <string>

#include "kernels/params.h"
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

}  // namespace holocron::ops
