// Fixed-width float vectors for the CPU kernels, written once with GNU vector extensions and compiled per
// instruction set: a kernel body is a template on the lane count W, marked HOLOCRON_INLINE, and instantiated inside
// small entry points carrying a target attribute (HOLOCRON_TARGET_AVX2, HOLOCRON_TARGET_AVX512) plus one without,
// the portable baseline. cpu_features.h picks the entry point at run time. Everything here must stay force-inlined:
// an out-of-line copy would be compiled for the baseline instruction set only.
#pragma once
#include <cstdint>
#include <cstring>

#define HOLOCRON_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) || defined(__i386__)
#define HOLOCRON_X86 1
#define HOLOCRON_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define HOLOCRON_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
#else
#define HOLOCRON_X86 0
#endif


namespace holocron::kernels::simd {

template <int W>
struct VecTraits;
template <>
struct VecTraits<4> {
  typedef float F __attribute__((vector_size(16)));
  typedef int32_t I __attribute__((vector_size(16)));
};
template <>
struct VecTraits<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
};
template <>
struct VecTraits<16> {
  typedef float F __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
};

template <int W>
using Vec = typename VecTraits<W>::F;

template <int W>
HOLOCRON_INLINE Vec<W> Load(const float* p) {
  Vec<W> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int W>
HOLOCRON_INLINE void Store(float* p, Vec<W> v) {
  std::memcpy(p, &v, sizeof(v));
}

// The first n (< W) lanes only; the others read as zero / are left untouched.
template <int W>
HOLOCRON_INLINE Vec<W> LoadPartial(const float* p, int64_t n) {
  float lanes[W] = {};
  for (int64_t i = 0; i < n; ++i) lanes[i] = p[i];
  return Load<W>(lanes);
}

template <int W>
HOLOCRON_INLINE void StorePartial(float* p, Vec<W> v, int64_t n) {
  float lanes[W];
  Store<W>(lanes, v);
  for (int64_t i = 0; i < n; ++i) p[i] = lanes[i];
}

// Every lane = s. Built in the integer domain: adding integer 0 is exact, so the compiler emits one broadcast
// (a float `{} + s` would have to keep the addition for s = -0.0).
template <int W>
HOLOCRON_INLINE Vec<W> Broadcast(float s) {
  using I = typename VecTraits<W>::I;
  int32_t bits;
  std::memcpy(&bits, &s, sizeof(bits));
  return reinterpret_cast<Vec<W>>(I{} + bits);
}

template <int W>
HOLOCRON_INLINE Vec<W> Zero() {
  return Vec<W>{};
}

// |v|: clears the sign bits.
template <int W>
HOLOCRON_INLINE Vec<W> Abs(Vec<W> v) {
  using I = typename VecTraits<W>::I;
  return reinterpret_cast<Vec<W>>(reinterpret_cast<I>(v) & 0x7fffffff);
}

// Lane-wise min(a, b); b where a lane compares unordered (NaN), like minps.
template <int W>
HOLOCRON_INLINE Vec<W> Min(Vec<W> a, Vec<W> b) {
  return a < b ? a : b;
}

// c + a, with the addition done by a fused multiply-add (a * 1 + c, exact) where the instruction set has one: on
// some CPUs (AMD Zen) the multiply-add units are separate from the adders that min and add share, so the kernels
// can put an accumulation there. Written as inline assembly for the vector widths that have FMA (an intrinsic would
// not inline through the target-less templates of this file), so W = 8 and W = 16 may only be instantiated inside
// the AVX2 and AVX-512 entry points, as every W > 4 kernel body is; `one` must hold 1.0 in every lane.
template <int W>
HOLOCRON_INLINE Vec<W> AccumulateOnFma(Vec<W> c, Vec<W> a, Vec<W> one) {
#if HOLOCRON_X86
  if constexpr (W == 8 || W == 16) {
    __asm__("vfmadd231ps %2, %1, %0" : "+v"(c) : "v"(a), "v"(one));
    return c;
  }
#endif
  (void)one;
  return c + a;
}

// True when every lane is exactly zero (either sign); false for NaN lanes.
template <int W>
HOLOCRON_INLINE bool AllZero(Vec<W> v) {
  using I = typename VecTraits<W>::I;
  const I nonzero = v != Zero<W>();
  I any{};
  for (int i = 0; i < W; ++i) any[0] |= nonzero[i];
  return any[0] == 0;
}

template <int W>
HOLOCRON_INLINE float ReduceAdd(Vec<W> v) {
  float lanes[W];
  Store<W>(lanes, v);
  float sum = 0.0f;
  for (int i = 0; i < W; ++i) sum += lanes[i];
  return sum;
}

}  // namespace holocron::kernels::simd
