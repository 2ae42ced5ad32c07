// The checks every op's validation is built from: attributes read against their contract (type, value count,
// range, default: the descriptors of holocron_contract.h), the sliding-window attributes and geometry two ops share,
// input ranks and the output size limit. Each check returns an empty string on success, otherwise a message that
// names the op, the input or attribute, what was expected and what was given.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "holocron_contract.h"
#include "kernels/params.h"
#include "ops/attributes.h"

namespace holocron::ops {

using Shape = std::vector<int64_t>;

// Largest element count of a tensor the kernels will produce.
inline constexpr __int128 kMaxElements = std::numeric_limits<int64_t>::max() / 8;

std::string Join(const std::vector<int64_t>& values);

// "<op>: " followed by the parts, streamed.
template <typename... Parts>
std::string Message(const char* op, const Parts&... parts) {
  std::ostringstream out;
  out << op << ": ";
  (out << ... << parts);
  return out.str();
}

std::string ReadInt(const char* op, const AttributeSource& source, const contract::IntAttribute& attr, int64_t& out);
std::string ReadFloat(const char* op, const AttributeSource& source, const contract::FloatAttribute& attr, float& out);
// An ints attribute of `count` values, each in [minimum, maximum]; `out` stays empty when it is absent.
std::string ReadInts(const char* op, const AttributeSource& source, const char* name, bool required, size_t count,
                     int64_t minimum, int64_t maximum, std::vector<int64_t>& out);

template <size_t N>
std::string ReadInts(const char* op, const AttributeSource& source, const contract::IntsAttribute<N>& attr,
                     std::array<int64_t, N>& out) {
  std::vector<int64_t> values;
  const std::string error = ReadInts(op, source, attr.name, attr.required, N, attr.minimum, attr.maximum, values);
  if (!error.empty()) return error;
  if (values.size() != N) {  // absent: the default
    out = attr.fallback;
  } else {
    for (size_t i = 0; i < N; ++i) out[i] = values[i];
  }
  return {};
}

struct WindowAttributes {
  std::array<int64_t, 2> strides{};
  std::array<int64_t, 4> pads{};  // top, left, bottom, right
  std::array<int64_t, 2> dilations{};
  int64_t group = 1;
};

// Reads strides, pads, dilations and group with the descriptors of one op's contract.
std::string ReadWindow(const char* op, const AttributeSource& source, const contract::IntsAttribute<2>& strides,
                       const contract::IntsAttribute<4>& pads, const contract::IntsAttribute<2>& dilations,
                       const contract::IntAttribute& group, WindowAttributes& out);

// Fills the window geometry of an NCHW input x; checks group against the channels and that the window fits.
std::string MakeWindow(const char* op, const WindowAttributes& attrs, const Shape& x, int64_t kernel_h,
                       int64_t kernel_w, kernels::Window2d& w);

// Checks `shape` has rank `rank` (described by `layout`) and no empty dim.
std::string CheckRank(const char* op, const char* input, const Shape& shape, size_t rank, const char* layout);

// Refuses an output of more than kMaxElements elements.
std::string CheckOutputSize(const char* op, const Shape& output);

}  // namespace holocron::ops
