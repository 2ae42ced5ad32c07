// The device-independent half of the Add2d glue: attributes read once per node, input validation into
// kernels::Add2dParams, shape inference. add2d_cpu_op.cc (and the CUDA glue) add the compute.
#pragma once
#include <string>

#include "kernels/params.h"
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

}  // namespace holocron::ops
