// Everything a holocron node is checked against before a kernel runs, shared by the CPU and CUDA glue and by shape
// inference: attribute types, lengths and ranges (defaults from the generated contract header), then the input
// shapes, turned into the kernels' params. Each check returns an empty string on success, otherwise a message that
// names the op, the input or attribute, what was expected and what was given.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/params.h"
#include "ops/attributes.h"

namespace holocron::ops {

using Shape = std::vector<int64_t>;

struct WindowAttributes {
  std::array<int64_t, 2> strides{};
  std::array<int64_t, 4> pads{};  // top, left, bottom, right
  std::array<int64_t, 2> dilations{};
  int64_t group = 1;
};

struct Add2dAttributes {
  WindowAttributes window;
  bool normalize_slices = false;
  float eps = 0.0f;
};

struct Involution2dAttributes {
  std::array<int64_t, 2> kernel_shape{};
  WindowAttributes window;
};

struct LambdaAttributes {
  int64_t num_heads = 0;
};

std::string ReadAttributes(const AttributeSource& source, Add2dAttributes& out);
std::string ReadAttributes(const AttributeSource& source, Involution2dAttributes& out);
std::string ReadAttributes(const AttributeSource& source, LambdaAttributes& out);

// bias is null when the optional input B is absent.
std::string MakeParams(const Add2dAttributes& attrs, const Shape& x, const Shape& w, const Shape* bias,
                       kernels::Add2dParams& out);
std::string MakeParams(const Involution2dAttributes& attrs, const Shape& x, const Shape& kernel,
                       kernels::Involution2dParams& out);
std::string MakeParams(const LambdaAttributes& attrs, const Shape& q, const Shape& keys, const Shape& values,
                       const Shape& position, kernels::LambdaParams& out);

// Output shapes of valid params.
Shape OutputShape(const kernels::Add2dParams& p);
Shape OutputShape(const kernels::Involution2dParams& p);
Shape OutputShape(const kernels::LambdaParams& p);

// Output extent of a sliding window along one axis (convolution formula); <= 0 when the window does not fit.
int64_t WindowOutput(int64_t size, int64_t pad_begin, int64_t pad_end, int64_t kernel, int64_t stride,
                     int64_t dilation);

}  // namespace holocron::ops
