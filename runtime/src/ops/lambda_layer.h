// The Lambda op (contract: holocron/ops/contract.py, constants: holocron_contract.h): its attributes, the
// validation of one call into kernels::LambdaParams, and the registration of its kernels (CPU, and CUDA when built).
#pragma once
#include <cstdint>
#include <string>

#include "kernels/params.h"
#include "ops/attributes.h"
#include "ops/glue.h"
#include "ops/validation.h"

namespace holocron::ops::lambda_layer {

struct Attributes {
  int64_t num_heads = 0;
};

std::string ReadAttributes(const AttributeSource& source, Attributes& out);

std::string MakeParams(const Attributes& attrs, const Shape& q, const Shape& keys, const Shape& values,
                       const Shape& position, kernels::LambdaParams& out);

Shape OutputShape(const kernels::LambdaParams& p);

// Appends the op once per element type (float, float16) on the CPU and, when `cuda` is set in a CUDA build, on CUDA.
void AppendOps(OpList& ops, bool cuda);

}  // namespace holocron::ops::lambda_layer
