#include "ops/validation.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "holocron_contract.h"

namespace holocron::ops {
namespace {

namespace contract = holocron::contract;

// Attribute values past this are refused: far beyond any real layer, and small enough that no size computed from
// them overflows 64 bits.
constexpr int64_t kMaxAttributeValue = int64_t{1} << 24;
// Largest element count of a tensor the kernels will produce.
constexpr __int128 kMaxElements = std::numeric_limits<int64_t>::max() / 8;

std::string Join(const std::vector<int64_t>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

template <typename... Parts>
std::string Message(const char* op, const Parts&... parts) {
  std::ostringstream out;
  out << op << ": ";
  (out << ... << parts);
  return out.str();
}

std::string ReadInt(const char* op, const AttributeSource& source, const char* name, bool required, int64_t fallback,
                    int64_t minimum, int64_t maximum, int64_t& out) {
  out = fallback;
  switch (source.Int(name, out)) {
    case AttributeRead::kWrongType:
      return Message(op, "attribute '", name, "' must be an int");
    case AttributeRead::kAbsent:
      if (required) return Message(op, "attribute '", name, "' is required");
      out = fallback;
      break;
    case AttributeRead::kOk:
      break;
  }
  if (out < minimum || out > maximum) {
    return Message(op, "attribute '", name, "' must be in [", minimum, ", ", maximum, "]; got ", out);
  }
  return {};
}

template <size_t N>
std::string ReadInts(const char* op, const AttributeSource& source, const char* name, bool required,
                     const std::array<int64_t, N>& fallback, int64_t minimum, std::array<int64_t, N>& out) {
  std::vector<int64_t> values;
  switch (source.Ints(name, values)) {
    case AttributeRead::kWrongType:
      return Message(op, "attribute '", name, "' must be a list of ints");
    case AttributeRead::kAbsent:
      if (required) return Message(op, "attribute '", name, "' is required");
      out = fallback;
      return {};
    case AttributeRead::kOk:
      break;
  }
  if (values.size() != N) {
    return Message(op, "attribute '", name, "' must hold ", N, " ints; got ", Join(values));
  }
  for (size_t i = 0; i < N; ++i) {
    if (values[i] < minimum || values[i] > kMaxAttributeValue) {
      return Message(op, "attribute '", name, "' values must be in [", minimum, ", ", kMaxAttributeValue, "]; got ",
                     Join(values));
    }
    out[i] = values[i];
  }
  return {};
}

// The window attributes' names and defaults, as the contract header spells them for one op.
struct WindowContract {
  const char* strides;
  std::array<int64_t, 2> strides_default;
  const char* pads;
  std::array<int64_t, 4> pads_default;
  const char* dilations;
  std::array<int64_t, 2> dilations_default;
  const char* group;
  int64_t group_default;
};

std::string ReadWindow(const char* op, const AttributeSource& source, const WindowContract& names,
                       WindowAttributes& out) {
  std::string error = ReadInts(op, source, names.strides, false, names.strides_default, 1, out.strides);
  if (error.empty()) error = ReadInts(op, source, names.pads, false, names.pads_default, 0, out.pads);
  if (error.empty()) error = ReadInts(op, source, names.dilations, false, names.dilations_default, 1, out.dilations);
  if (error.empty()) {
    error = ReadInt(op, source, names.group, false, names.group_default, 1, kMaxAttributeValue, out.group);
  }
  return error;
}

std::string CheckRank(const char* op, const char* input, const Shape& shape, size_t rank, const char* layout) {
  if (shape.size() != rank) {
    return Message(op, "input ", input, " must have rank ", rank, " ", layout, "; got shape ", Join(shape));
  }
  for (int64_t dim : shape) {
    if (dim <= 0) return Message(op, "input ", input, " must not be empty; got shape ", Join(shape));
  }
  return {};
}

// Element count, saturated just past kMaxElements.
__int128 Product(const Shape& shape) {
  __int128 total = 1;
  for (int64_t dim : shape) {
    total *= dim;
    if (total > kMaxElements) return kMaxElements + 1;
  }
  return total;
}

// Fills the window geometry of an NCHW input x; checks group against the channels and that the window fits.
std::string MakeWindow(const char* op, const WindowAttributes& attrs, const Shape& x, int64_t kernel_h,
                       int64_t kernel_w, kernels::Window2d& w) {
  w.batch = x[0];
  w.channels = x[1];
  w.height = x[2];
  w.width = x[3];
  w.kernel_h = kernel_h;
  w.kernel_w = kernel_w;
  w.stride_h = attrs.strides[0];
  w.stride_w = attrs.strides[1];
  w.pad_top = attrs.pads[0];
  w.pad_left = attrs.pads[1];
  w.pad_bottom = attrs.pads[2];
  w.pad_right = attrs.pads[3];
  w.dilation_h = attrs.dilations[0];
  w.dilation_w = attrs.dilations[1];
  w.groups = attrs.group;
  if (w.channels % w.groups != 0) {
    return Message(op, "attribute 'group' (", w.groups, ") must divide the ", w.channels, " channels of X");
  }
  w.out_h = WindowOutput(w.height, w.pad_top, w.pad_bottom, w.kernel_h, w.stride_h, w.dilation_h);
  w.out_w = WindowOutput(w.width, w.pad_left, w.pad_right, w.kernel_w, w.stride_w, w.dilation_w);
  if (w.out_h <= 0 || w.out_w <= 0) {
    return Message(op, "the kernel (", kernel_h, ", ", kernel_w, ") with dilations ",
                   Join({w.dilation_h, w.dilation_w}), " does not fit the padded input: X shape ", Join(x), ", pads ",
                   Join({w.pad_top, w.pad_left, w.pad_bottom, w.pad_right}));
  }
  return {};
}

}  // namespace

int64_t WindowOutput(int64_t size, int64_t pad_begin, int64_t pad_end, int64_t kernel, int64_t stride,
                     int64_t dilation) {
  const __int128 span =
      static_cast<__int128>(size) + pad_begin + pad_end - static_cast<__int128>(dilation) * (kernel - 1) - 1;
  if (span < 0 || stride <= 0) return 0;
  const __int128 out = span / stride + 1;
  return out > std::numeric_limits<int64_t>::max() ? 0 : static_cast<int64_t>(out);
}

std::string ReadAttributes(const AttributeSource& source, Add2dAttributes& out) {
  namespace c = contract::add2d;
  std::string error = ReadWindow(c::kOpName, source,
                                 {c::kStridesName, c::kStridesDefault, c::kPadsName, c::kPadsDefault, c::kDilationsName,
                                  c::kDilationsDefault, c::kGroupName, c::kGroupDefault},
                                 out.window);
  int64_t normalize = 0;
  if (error.empty()) {
    error = ReadInt(c::kOpName, source, c::kNormalizeSlicesName, false, c::kNormalizeSlicesDefault, 0, 1, normalize);
  }
  out.normalize_slices = normalize != 0;
  if (!error.empty()) return error;
  out.eps = c::kEpsDefault;
  switch (source.Float(c::kEpsName, out.eps)) {
    case AttributeRead::kWrongType:
      return Message(c::kOpName, "attribute '", c::kEpsName, "' must be a float");
    case AttributeRead::kAbsent:
      out.eps = c::kEpsDefault;
      break;
    case AttributeRead::kOk:
      break;
  }
  if (!std::isfinite(out.eps) || out.eps < 0.0f) {
    return Message(c::kOpName, "attribute '", c::kEpsName, "' must be finite and >= 0; got ", out.eps);
  }
  return {};
}

std::string ReadAttributes(const AttributeSource& source, Involution2dAttributes& out) {
  namespace c = contract::involution2d;
  std::string error = ReadInts(c::kOpName, source, c::kKernelShapeName, true, std::array<int64_t, 2>{}, 1,
                               out.kernel_shape);
  if (error.empty()) {
    error = ReadWindow(c::kOpName, source,
                       {c::kStridesName, c::kStridesDefault, c::kPadsName, c::kPadsDefault, c::kDilationsName,
                        c::kDilationsDefault, c::kGroupName, c::kGroupDefault},
                       out.window);
  }
  return error;
}

std::string ReadAttributes(const AttributeSource& source, LambdaAttributes& out) {
  namespace c = contract::lambda_layer;
  return ReadInt(c::kOpName, source, c::kNumHeadsName, true, 0, 1, kMaxAttributeValue, out.num_heads);
}

std::string MakeParams(const Add2dAttributes& attrs, const Shape& x, const Shape& w, const Shape* bias,
                       kernels::Add2dParams& out) {
  const char* op = contract::add2d::kOpName;
  std::string error = CheckRank(op, "X", x, 4, "(N, C_in, H, W)");
  if (error.empty()) error = CheckRank(op, "W", w, 4, "(C_out, C_in / group, kH, kW)");
  if (!error.empty()) return error;
  error = MakeWindow(op, attrs.window, x, w[2], w[3], out.window);
  if (!error.empty()) return error;
  const int64_t group = attrs.window.group;
  if (w[1] * group != x[1]) {
    return Message(op, "W must have C_in / group = ", x[1] / group, " input channels (X has ", x[1],
                   " channels, group ", group, "); got W shape ", Join(w));
  }
  if (w[0] % group != 0) {
    return Message(op, "attribute 'group' (", group, ") must divide the ", w[0], " output channels of W");
  }
  if (bias != nullptr && (bias->size() != 1 || (*bias)[0] != w[0])) {
    return Message(op, "input B must have shape [", w[0], "] (C_out); got ", Join(*bias));
  }
  out.out_channels = w[0];
  out.has_bias = bias != nullptr;
  out.normalize_slices = attrs.normalize_slices;
  out.eps = attrs.eps;
  if (Product(OutputShape(out)) > kMaxElements) return Message(op, "output too large: ", Join(OutputShape(out)));
  return {};
}

std::string MakeParams(const Involution2dAttributes& attrs, const Shape& x, const Shape& kernel,
                       kernels::Involution2dParams& out) {
  const char* op = contract::involution2d::kOpName;
  std::string error = CheckRank(op, "X", x, 4, "(N, C, H, W)");
  if (error.empty()) error = CheckRank(op, "K", kernel, 4, "(N, group * kH * kW, H_out, W_out)");
  if (error.empty()) {
    error = MakeWindow(op, attrs.window, x, attrs.kernel_shape[0], attrs.kernel_shape[1], out.window);
  }
  if (!error.empty()) return error;
  const kernels::Window2d& g = out.window;
  const Shape expected{g.batch, g.groups * g.kernel_h * g.kernel_w, g.out_h, g.out_w};
  if (kernel != expected) {
    return Message(op, "K must have shape ", Join(expected), " (N, group * kH * kW, H_out, W_out); got ",
                   Join(kernel));
  }
  if (Product(OutputShape(out)) > kMaxElements) return Message(op, "output too large: ", Join(OutputShape(out)));
  return {};
}

std::string MakeParams(const LambdaAttributes& attrs, const Shape& q, const Shape& keys, const Shape& values,
                       const Shape& position, kernels::LambdaParams& out) {
  const char* op = contract::lambda_layer::kOpName;
  std::string error = CheckRank(op, "Q", q, 4, "(N, heads * K, H, W)");
  if (error.empty()) error = CheckRank(op, "Kx", keys, 4, "(N, K * U, H, W)");
  if (error.empty()) error = CheckRank(op, "V", values, 4, "(N, V * U, H, W)");
  if (!error.empty()) return error;
  if (position.size() != 4 && position.size() != 5) {
    return Message(op, "input P must have rank 5 (K, U, 1, r, r) or rank 4 (H * W, H * W, K, U); got shape ",
                   Join(position));
  }
  const char* layout = position.size() == 5 ? "(K, U, 1, r, r)" : "(H * W, H * W, K, U)";
  error = CheckRank(op, "P", position, position.size(), layout);
  if (!error.empty()) return error;
  if (keys[0] != q[0] || values[0] != q[0] || keys[2] != q[2] || values[2] != q[2] || keys[3] != q[3] ||
      values[3] != q[3]) {
    return Message(op, "Q, Kx and V must share N, H and W; got shapes ", Join(q), ", ", Join(keys), ", ",
                   Join(values));
  }
  const int64_t heads = attrs.num_heads;
  if (q[1] % heads != 0) {
    return Message(op, "attribute 'num_heads' (", heads, ") must divide the ", q[1], " channels of Q");
  }
  out.batch = q[0];
  out.heads = heads;
  out.dim_k = q[1] / heads;
  out.height = q[2];
  out.width = q[3];
  if (keys[1] % out.dim_k != 0) {
    return Message(op, "Kx must have K * U channels with K = ", out.dim_k, " (Q channels / num_heads); got ",
                   keys[1]);
  }
  out.dim_u = keys[1] / out.dim_k;
  if (values[1] % out.dim_u != 0) {
    return Message(op, "V must have V * U channels with U = ", out.dim_u, " (Kx channels / K); got ", values[1]);
  }
  out.dim_v = values[1] / out.dim_u;
  const int64_t positions = out.height * out.width;
  if (position.size() == 5) {
    const int64_t r = position[3];
    if (position[0] != out.dim_k || position[1] != out.dim_u || position[2] != 1 || position[4] != r || r % 2 != 1) {
      return Message(op, "local P must have shape (K, U, 1, r, r) = (", out.dim_k, ", ", out.dim_u,
                     ", 1, r, r) with r odd; got ", Join(position));
    }
    out.local = true;
    out.r = r;
  } else {
    const Shape expected{positions, positions, out.dim_k, out.dim_u};
    if (position != expected) {
      return Message(op, "global P must have shape (H * W, H * W, K, U) = ", Join(expected), "; got ",
                     Join(position));
    }
    out.local = false;
    out.r = 0;
  }
  if (Product(OutputShape(out)) > kMaxElements) return Message(op, "output too large: ", Join(OutputShape(out)));
  return {};
}

Shape OutputShape(const kernels::Add2dParams& p) {
  return {p.window.batch, p.out_channels, p.window.out_h, p.window.out_w};
}

Shape OutputShape(const kernels::Involution2dParams& p) {
  return {p.window.batch, p.window.channels, p.window.out_h, p.window.out_w};
}

Shape OutputShape(const kernels::LambdaParams& p) { return {p.batch, p.heads * p.dim_v, p.height, p.width}; }

}  // namespace holocron::ops
