// Involution2d: Y[n, c, y, x] = sum_{i, j} K[n, g * kH * kW + i * kW + j, y, x] * X_pad[n, c, y * sH + i * dH,
// x * sW + j * dW], g the channel group of c and X_pad the zero-padded input.
#include "common.cuh"
#include "launch.h"

namespace holocron::kernels::cuda {
namespace {

constexpr int kBlock = 256;
constexpr int kChannelsPerThread = 4;  // channels of one group sharing each loaded kernel tap

template <typename Index>
struct InvolutionGeometry : detail::WindowGeometry<Index> {
  Index groups, group_channels, chunks;  // chunks of kChannelsPerThread channels per group
  Index items, item_blocks;  // items = N * groups * chunks * H_out * W_out, pixel fastest
};

template <typename Index, typename T>
__global__ void __launch_bounds__(kBlock)
    involution2d_kernel(const InvolutionGeometry<Index> g, const T* __restrict__ x, const T* __restrict__ kernel,
                        T* __restrict__ y) {
  for (Index block = blockIdx.x; block < g.item_blocks; block += gridDim.x) {
    const Index item = block * kBlock + static_cast<Index>(threadIdx.x);
    if (item >= g.items) return;
    const Index out_pos = item % g.out_plane;
    Index rest = item / g.out_plane;
    const Index chunk = rest % g.chunks;
    rest /= g.chunks;
    const Index group = rest % g.groups;
    const Index n = rest / g.groups;
    const Index oy = out_pos / g.out_w;
    const Index ox = out_pos - oy * g.out_w;
    const Index c_first = group * g.group_channels + chunk * kChannelsPerThread;
    const Index c_left = (group + 1) * g.group_channels - c_first;
    const int c_count = c_left < kChannelsPerThread ? static_cast<int>(c_left) : kChannelsPerThread;

    const Index taps = g.kernel_h * g.kernel_w;
    const T* tap_kernel = kernel + (n * g.groups + group) * taps * g.out_plane + out_pos;
    const T* xc = x + (n * g.channels + c_first) * g.plane;
    const Index iy0 = oy * g.stride_h - g.pad_top;
    const Index ix0 = ox * g.stride_w - g.pad_left;

    float acc[kChannelsPerThread] = {};
    for (Index i = 0; i < g.kernel_h; ++i) {
      const Index iy = iy0 + i * g.dilation_h;
      if (!detail::in_range(iy, g.height)) {
        tap_kernel += g.kernel_w * g.out_plane;
        continue;
      }
      for (Index j = 0; j < g.kernel_w; ++j, tap_kernel += g.out_plane) {
        const Index ix = ix0 + j * g.dilation_w;
        if (!detail::in_range(ix, g.width)) continue;
        const float k = detail::load(tap_kernel);
        const T* src = xc + iy * g.width + ix;
#pragma unroll
        for (int c = 0; c < kChannelsPerThread; ++c) {
          if (c < c_count) acc[c] += k * detail::load(src + c * g.plane);
        }
      }
    }

    T* out = y + (n * g.channels + c_first) * g.out_plane + out_pos;
#pragma unroll
    for (int c = 0; c < kChannelsPerThread; ++c) {
      if (c < c_count) detail::store(out + c * g.out_plane, acc[c]);
    }
  }
}

template <typename Index, typename T>
cudaError_t launch_indexed(const Window2d& w, const T* x, const T* kernel, T* y, cudaStream_t stream) {
  const int64_t group_channels = w.channels / w.groups;
  const int64_t chunks = detail::ceil_div(group_channels, kChannelsPerThread);
  const int64_t items = w.batch * w.groups * chunks * w.out_h * w.out_w;
  const int64_t blocks = detail::ceil_div(items, kBlock);
  InvolutionGeometry<Index> g{};
  static_cast<detail::WindowGeometry<Index>&>(g) = detail::window_geometry<Index>(w);
  g.groups = static_cast<Index>(w.groups);
  g.group_channels = static_cast<Index>(group_channels);
  g.chunks = static_cast<Index>(chunks);
  g.items = static_cast<Index>(items);
  g.item_blocks = static_cast<Index>(blocks);
  involution2d_kernel<Index><<<detail::grid_extent(blocks, detail::kMaxGridX), kBlock, 0, stream>>>(g, x, kernel, y);
  return cudaGetLastError();
}

template <typename T>
cudaError_t Involution2dAny(const Involution2dParams& p, const T* x, const T* kernel, T* y, cudaStream_t stream) {
  const Window2d& w = p.window;
  if (!detail::valid_window(w)) return cudaErrorInvalidValue;
  const int64_t out_plane = w.out_h * w.out_w;
  const int64_t y_numel = w.batch * w.channels * out_plane;
  if (y_numel == 0) return cudaSuccess;
  const int64_t x_numel = w.batch * w.channels * w.height * w.width;
  const int64_t k_numel = w.batch * w.groups * w.kernel_h * w.kernel_w * out_plane;
  if ((x_numel > 0 && x == nullptr) || kernel == nullptr || y == nullptr) return cudaErrorInvalidValue;
  if (detail::fits_int32({x_numel, k_numel, y_numel})) {
    return launch_indexed<int32_t>(w, x, kernel, y, stream);
  }
  return launch_indexed<int64_t>(w, x, kernel, y, stream);
}

}  // namespace

cudaError_t Involution2dCuda(const Involution2dParams& p, const float* x, const float* kernel, float* y,
                             cudaStream_t stream) {
  return Involution2dAny(p, x, kernel, y, stream);
}

cudaError_t Involution2dCudaHalf(const Involution2dParams& p, const __half* x, const __half* kernel, __half* y,
                                 cudaStream_t stream) {
  return Involution2dAny(p, x, kernel, y, stream);
}

}  // namespace holocron::kernels::cuda
