// The Involution2d op (contract: holocron/ops/contract.py, constants: holocron_contract.h): its attributes, the
// validation of one call into kernels::Involution2dParams, and the registration of its kernels (CPU, and CUDA when
// built).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "kernels/params.h"
#include "ops/attributes.h"
#include "ops/glue.h"
#include "ops/validation.h"

namespace holocron::ops::involution2d {

struct Attributes {
  std::array<int64_t, 2> kernel_shape{};
  WindowAttributes window;
};

std::string ReadAttributes(const AttributeSource& source, Attributes& out);

std::string MakeParams(const Attributes& attrs, const Shape& x, const Shape& kernel,
                       kernels::Involution2dParams& out);

Shape OutputShape(const kernels::Involution2dParams& p);

// Appends the op once per element type (float, float16) on the CPU and, when `cuda` is set in a CUDA build, on CUDA.
void AppendOps(OpList& ops, bool cuda);

}  // namespace holocron::ops::involution2d
