// The device-independent half of the Involution2d glue: attributes read once per node, input validation into
// kernels::Involution2dParams, shape inference.
#pragma once
#include <string>

#include "kernels/params.h"
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

}  // namespace holocron::ops
