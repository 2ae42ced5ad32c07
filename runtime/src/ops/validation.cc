#include "ops/validation.h"

#include <cmath>

namespace holocron::ops {

std::string Join(const std::vector<int64_t>& values) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << "]";
  return out.str();
}

// Reads one scalar attribute with `read` (its default when absent); `kind` names the expected ONNX type.
template <typename Attr, typename Value, typename Read>
std::string ReadScalar(const char* op, const Attr& attr, const char* kind, Value& out, Read read) {
  out = attr.fallback;
  switch (read(attr.name, out)) {
    case AttributeRead::kWrongType:
      return Message(op, "attribute '", attr.name, "' must be ", kind);
    case AttributeRead::kAbsent:
      if (attr.required) return Message(op, "attribute '", attr.name, "' is required");
      out = attr.fallback;
      break;
    case AttributeRead::kOk:
      break;
  }
  return {};
}

std::string ReadInt(const char* op, const AttributeSource& source, const contract::IntAttribute& attr, int64_t& out) {
  std::string error =
      ReadScalar(op, attr, "an int", out, [&](const char* name, int64_t& value) { return source.Int(name, value); });
  if (!error.empty()) return error;
  if (out < attr.minimum || out > attr.maximum) {
    return Message(op, "attribute '", attr.name, "' must be in [", attr.minimum, ", ", attr.maximum, "]; got ", out);
  }
  return {};
}

std::string ReadFloat(const char* op, const AttributeSource& source, const contract::FloatAttribute& attr, float& out) {
  std::string error =
      ReadScalar(op, attr, "a float", out, [&](const char* name, float& value) { return source.Float(name, value); });
  if (!error.empty()) return error;
  if (std::isfinite(out) && out >= attr.minimum && out <= attr.maximum) return {};
  if (std::isinf(attr.maximum)) {
    return Message(op, "attribute '", attr.name, "' must be finite and >= ", attr.minimum, "; got ", out);
  }
  return Message(op, "attribute '", attr.name, "' must be finite and in [", attr.minimum, ", ", attr.maximum,
                 "]; got ", out);
}

std::string ReadInts(const char* op, const AttributeSource& source, const char* name, bool required, size_t count,
                     int64_t minimum, int64_t maximum, std::vector<int64_t>& out) {
  out.clear();
  std::vector<int64_t> values;
  switch (source.Ints(name, values)) {
    case AttributeRead::kWrongType:
      return Message(op, "attribute '", name, "' must be a list of ints");
    case AttributeRead::kAbsent:
      if (required) return Message(op, "attribute '", name, "' is required");
      return {};
    case AttributeRead::kOk:
      break;
  }
  if (values.size() != count) {
    return Message(op, "attribute '", name, "' must hold ", count, " ints; got ", Join(values));
  }
  for (int64_t value : values) {
    if (value < minimum || value > maximum) {
      return Message(op, "attribute '", name, "' values must be in [", minimum, ", ", maximum, "]; got ",
                     Join(values));
    }
  }
  out = std::move(values);
  return {};
}

std::string ReadWindow(const char* op, const AttributeSource& source, const contract::IntsAttribute<2>& strides,
                       const contract::IntsAttribute<4>& pads, const contract::IntsAttribute<2>& dilations,
                       const contract::IntAttribute& group, WindowAttributes& out) {
  std::string error = ReadInts(op, source, strides, out.strides);
  if (error.empty()) error = ReadInts(op, source, pads, out.pads);
  if (error.empty()) error = ReadInts(op, source, dilations, out.dilations);
  if (error.empty()) error = ReadInt(op, source, group, out.group);
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

std::string CheckOutputSize(const char* op, const Shape& output) {
  __int128 total = 1;
  for (int64_t dim : output) {
    total *= dim;
    if (total > kMaxElements) return Message(op, "output too large: ", Join(output));
  }
  return {};
}

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
  w.out_h = kernels::ConvOutputSize(w.height, w.kernel_h, w.stride_h, w.pad_top, w.pad_bottom, w.dilation_h);
  w.out_w = kernels::ConvOutputSize(w.width, w.kernel_w, w.stride_w, w.pad_left, w.pad_right, w.dilation_w);
  if (w.out_h <= 0 || w.out_w <= 0) {
    return Message(op, "the kernel (", kernel_h, ", ", kernel_w, ") with dilations ",
                   Join({w.dilation_h, w.dilation_w}), " does not fit the padded input: X shape ", Join(x), ", pads ",
                   Join({w.pad_top, w.pad_left, w.pad_bottom, w.pad_right}));
  }
  return {};
}

}  // namespace holocron::ops
