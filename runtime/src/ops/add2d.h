// The Add2d op (contract: holocron/ops/contract.py, constants: holocron_contract.h): its attributes, the validation
// of one call into kernels::Add2dParams, and the registration of its kernels (CPU, and CUDA when built).
#pragma once
#include <string>

#include "kernels/params.h"
#include "ops/attributes.h"
#include "ops/glue.h"
#include "ops/validation.h"

namespace holocron::ops::add2d {

struct Attributes {
  WindowAttributes window;
  bool normalize_slices = false;
  float eps = 0.0f;
};

std::string ReadAttributes(const AttributeSource& source, Attributes& out);

// bias is null when the optional input B is absent.
std::string MakeParams(const Attributes& attrs, const Shape& x, const Shape& w, const Shape* bias,
                       kernels::Add2dParams& out);

Shape OutputShape(const kernels::Add2dParams& p);

// Appends the op once per element type (float, float16) on the CPU and, when `cuda` is set in a CUDA build, on CUDA.
void AppendOps(OpList& ops, bool cuda);

}  // namespace holocron::ops::add2d
