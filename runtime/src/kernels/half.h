// IEEE 754 binary16 ("half", onnxruntime's float16) to and from float32, on raw 16-bit patterns so the kernels stay
// free of onnxruntime and CUDA types. Float to half rounds to nearest, ties to even; values beyond the half range
// become infinities, NaNs stay NaNs (quiet). Usable from host code and, being plain integer/float arithmetic, from
// the emulated CUDA check.
#pragma once
#include <cstdint>
#include <cstring>

namespace holocron::kernels {

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t magnitude = h & 0x7fffu;
  uint32_t bits;
  if (magnitude >= 0x7c00u) {  // infinity or NaN: all-ones exponent, payload kept
    bits = sign | 0x7f800000u | ((magnitude & 0x3ffu) << 13);
  } else if (magnitude >= 0x0400u) {  // normal: rebias the exponent from 15 to 127
    bits = sign | ((magnitude << 13) + 0x38000000u);
  } else {  // zero or subnormal: magnitude units of 2^-24, exact in float
    const float value = static_cast<float>(magnitude) * 5.9604644775390625e-8f;
    std::memcpy(&bits, &value, sizeof(bits));
    bits |= sign;
  }
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline uint16_t FloatToHalf(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds past the largest half (65504)
  if (magnitude < 0x38800000u) {
    // Below 2^-14, the half subnormals: adding 0.5 (ulp 2^-24, the subnormal step) makes the FPU round to nearest
    // even, and the low mantissa bits are then the subnormal's.
    float value;
    std::memcpy(&value, &magnitude, sizeof(value));
    value += 0.5f;
    uint32_t rounded;
    std::memcpy(&rounded, &value, sizeof(rounded));
    return sign | static_cast<uint16_t>(rounded - 0x3f000000u);
  }
  // Normal: rebias the exponent (-112 << 23) and round the 13 dropped bits to nearest even.
  const uint32_t odd = (magnitude >> 13) & 1u;
  magnitude += 0xc8000fffu + odd;
  return sign | static_cast<uint16_t>(magnitude >> 13);
}

}  // namespace holocron::kernels
