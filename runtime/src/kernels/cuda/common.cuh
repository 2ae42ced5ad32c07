// Helpers shared by the holocron CUDA kernels (internal to runtime/src/kernels/cuda).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

#include "../params.h"

namespace holocron::kernels::cuda::detail {

inline constexpr int64_t kMaxGridX = std::numeric_limits<int32_t>::max();
inline constexpr int64_t kMaxGridY = 65535;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Grid extent for `blocks` blocks; kernels loop over the remainder when the hardware limit caps it.
inline unsigned int grid_extent(int64_t blocks, int64_t limit) {
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min(blocks, limit)));
}

// Whether 32-bit index arithmetic is exact for tensors of these element counts. The bound 2^30 leaves room for
// the one-grid-stride overshoot of grid-stride loop counters (at most twice the count). Building with
// HOLOCRON_CUDA_FORCE_INT64_INDEX exercises the 64-bit path on small tensors (used by the check harness).
inline constexpr int64_t kMaxInt32Numel = int64_t{1} << 30;

inline bool fits_int32(std::initializer_list<int64_t> numels) {
#ifdef HOLOCRON_CUDA_FORCE_INT64_INDEX
  static_cast<void>(numels);
  return false;
#else
  for (int64_t n : numels) {
    if (n >= kMaxInt32Numel) return false;
  }
  return true;
#endif
}

// Whether the window is self-consistent: positive kernel/stride/dilation/groups, non-negative sizes and pads,
// groups dividing the channels and out_h/out_w matching the convolution formula.
inline bool valid_window(const Window2d& w) {
  if (w.batch < 0 || w.channels < 0 || w.height < 0 || w.width < 0) return false;
  if (w.kernel_h < 1 || w.kernel_w < 1 || w.stride_h < 1 || w.stride_w < 1) return false;
  if (w.dilation_h < 1 || w.dilation_w < 1 || w.groups < 1 || w.channels % w.groups != 0) return false;
  if (w.pad_top < 0 || w.pad_left < 0 || w.pad_bottom < 0 || w.pad_right < 0) return false;
  return w.out_h == ConvOutputSize(w.height, w.kernel_h, w.stride_h, w.pad_top, w.pad_bottom, w.dilation_h) &&
         w.out_w == ConvOutputSize(w.width, w.kernel_w, w.stride_w, w.pad_left, w.pad_right, w.dilation_w);
}

// The sliding-window geometry the add2d and involution2d kernels read, in the kernels' index type.
template <typename Index>
struct WindowGeometry {
  Index channels, height, width, plane;  // input
  Index kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  Index out_w, out_plane;
};

template <typename Index>
WindowGeometry<Index> window_geometry(const Window2d& w) {
  WindowGeometry<Index> g{};
  g.channels = static_cast<Index>(w.channels);
  g.height = static_cast<Index>(w.height);
  g.width = static_cast<Index>(w.width);
  g.plane = static_cast<Index>(w.height * w.width);
  g.kernel_h = static_cast<Index>(w.kernel_h);
  g.kernel_w = static_cast<Index>(w.kernel_w);
  g.stride_h = static_cast<Index>(w.stride_h);
  g.stride_w = static_cast<Index>(w.stride_w);
  g.pad_top = static_cast<Index>(w.pad_top);
  g.pad_left = static_cast<Index>(w.pad_left);
  g.dilation_h = static_cast<Index>(w.dilation_h);
  g.dilation_w = static_cast<Index>(w.dilation_w);
  g.out_w = static_cast<Index>(w.out_w);
  g.out_plane = static_cast<Index>(w.out_h * w.out_w);
  return g;
}

// 0 <= i < n in one unsigned comparison.
template <typename Index>
__device__ __forceinline__ bool in_range(Index i, Index n) {
  using Unsigned = std::make_unsigned_t<Index>;
  return static_cast<Unsigned>(i) < static_cast<Unsigned>(n);
}

// Element access for both tensor types (float32, float16): loads widen to float, the kernels' arithmetic type, and
// stores round to nearest even.
__device__ __forceinline__ float load(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load(const __half* p) { return __half2float(__ldg(p)); }
__device__ __forceinline__ void store(float* p, float value) { *p = value; }
__device__ __forceinline__ void store(__half* p, float value) { *p = __float2half_rn(value); }

// plane[iy * width + ix], or 0 outside the (height, width) plane: the zero padding of the contract.
template <typename Index, typename T>
__device__ __forceinline__ float padded_load(const T* __restrict__ plane, Index iy, Index ix, Index height,
                                             Index width) {
  return (in_range(iy, height) && in_range(ix, width)) ? load(plane + iy * width + ix) : 0.0f;
}

}  // namespace holocron::kernels::cuda::detail
