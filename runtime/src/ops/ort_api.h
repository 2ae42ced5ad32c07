// The onnxruntime C++ API as this library uses it: no link-time dependency (ORT_API_MANUAL_INIT; register.cc
// installs the API table the runtime hands in) and a pinned API version, so one build loads into every onnxruntime
// release from kOrtApiVersion on.
#pragma once

#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#include <onnxruntime_lite_custom_op.h>
#undef ORT_API_MANUAL_INIT

#include <cstdint>

namespace holocron::ops {

// 21 = onnxruntime 1.21: the API table requested from the runtime and the version stamped on our custom ops. Newer
// headers still work (only functions of version <= 21 are called); older runtimes are refused at registration.
inline constexpr uint32_t kOrtApiVersion = ORT_API_VERSION < 21 ? ORT_API_VERSION : 21;

}  // namespace holocron::ops
