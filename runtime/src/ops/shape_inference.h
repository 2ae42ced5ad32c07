// Shape inference of the holocron ops, on the raw C API so that absent optional inputs and dims that are unknown or
// symbolic are handled: an output shape is declared only when every dim of it is known, a dim copied from an input
// (the batch, for example) may carry that input's symbol. Invalid attributes, and invalid inputs whose shapes are
// fully known, fail the session at load time with the same messages as the kernels.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "ops/glue.h"

namespace holocron::ops {

struct InferredDim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // non-empty for a named unknown dim
  bool known() const { return value >= 0; }
};
using InferredShape = std::vector<InferredDim>;

// The shape of input `index`; nullopt when the input is absent or its rank unknown.
std::optional<InferredShape> InferredInput(const OrtApi& api, OrtShapeInferContext* context, size_t index);

// Whether every dim is a known value; fills values.
bool KnownValues(const InferredShape& shape, std::vector<int64_t>& values);

// Declares output `index` of `shape`, with the element type of input 0; does nothing when a dim is neither known
// nor symbolic.
Ort::Status DeclareOutput(const OrtApi& api, OrtShapeInferContext* context, size_t index, const InferredShape& shape);

}  // namespace holocron::ops
