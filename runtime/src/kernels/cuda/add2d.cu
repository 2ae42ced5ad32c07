// Add2d (AdderNet): Y[n, o, y, x] = B[o] - sum_{c, i, j} |S[c, i, j] - W[o, c, i, j]|, S the zero-padded input
// slice under the window, optionally normalized to zero mean and unit variance first.
#include "common.cuh"
#include "launch.h"

namespace holocron::kernels::cuda {
namespace {

constexpr int kBlock = 128;    // output pixels per block
constexpr int kTapTile = 64;   // slice taps per shared-memory filter tile

template <typename Index>
struct Add2dGeometry : detail::WindowGeometry<Index> {
  Index group_in, group_out, slice;  // C_in / group, C_out / group, C_in / group * kH * kW
  Index out_channels, pixels, pixel_blocks;  // pixels = N * H_out * W_out
  Index out_tiles, group_tiles;  // channel tiles per group, groups * out_tiles
  float eps;
};

// Mean and 1 / sqrt(biased variance + eps) of one zero-padded slice, two passes in double: a constant slice then
// centres to exactly 0 (a float32 mean would leave ulp-sized residues that 1 / sqrt(eps) amplifies), and a slice
// with var + eps == 0 gets inv_std = 0 (it normalises to 0), as on the CPU.
template <typename Index, typename T>
__device__ void slice_stats(const Add2dGeometry<Index>& g, const T* __restrict__ xg, Index iy0, Index ix0,
                            double& mean, double& inv_std) {
  double sum = 0.0;
  for (Index c = 0; c < g.group_in; ++c) {
    const T* plane = xg + c * g.plane;
    for (Index i = 0; i < g.kernel_h; ++i) {
      for (Index j = 0; j < g.kernel_w; ++j) {
        sum += detail::padded_load(plane, iy0 + i * g.dilation_h, ix0 + j * g.dilation_w, g.height, g.width);
      }
    }
  }
  mean = sum / static_cast<double>(g.slice);
  double squares = 0.0;
  for (Index c = 0; c < g.group_in; ++c) {
    const T* plane = xg + c * g.plane;
    for (Index i = 0; i < g.kernel_h; ++i) {
      for (Index j = 0; j < g.kernel_w; ++j) {
        const double d =
            detail::padded_load(plane, iy0 + i * g.dilation_h, ix0 + j * g.dilation_w, g.height, g.width) - mean;
        squares += d * d;
      }
    }
  }
  const double denominator = squares / static_cast<double>(g.slice) + static_cast<double>(g.eps);
  inv_std = denominator > 0.0 ? 1.0 / sqrt(denominator) : 0.0;
}

// Block (kBlock pixels) x (one group, TO output channels of it). Loops cover grids capped by hardware limits; the
// loop bounds only depend on blockIdx so every thread reaches each __syncthreads.
template <typename Index, int TO, bool Normalize, typename T>
__global__ void __launch_bounds__(kBlock)
    add2d_kernel(const Add2dGeometry<Index> g, const T* __restrict__ x, const T* __restrict__ w,
                 const T* __restrict__ bias, T* __restrict__ y) {
  __shared__ __align__(16) float filters[kTapTile][TO];  // [tap][output channel of the tile]

  for (Index tile = blockIdx.y; tile < g.group_tiles; tile += gridDim.y) {
    const Index group = tile / g.out_tiles;
    const Index o_first = group * g.group_out + (tile - group * g.out_tiles) * TO;
    const Index o_left = (group + 1) * g.group_out - o_first;
    const int o_count = o_left < TO ? static_cast<int>(o_left) : TO;

    for (Index block = blockIdx.x; block < g.pixel_blocks; block += gridDim.x) {
      const Index pixel = block * kBlock + static_cast<Index>(threadIdx.x);
      const bool active = pixel < g.pixels;
      Index n = 0, out_pos = 0, oy = 0, ox = 0;
      if (active) {
        n = pixel / g.out_plane;
        out_pos = pixel - n * g.out_plane;
        oy = out_pos / g.out_w;
        ox = out_pos - oy * g.out_w;
      }
      const Index iy0 = oy * g.stride_h - g.pad_top;
      const Index ix0 = ox * g.stride_w - g.pad_left;
      const T* xg = x + (n * g.channels + group * g.group_in) * g.plane;

      double mean = 0.0, inv_std = 1.0;
      if (Normalize && active) slice_stats(g, xg, iy0, ix0, mean, inv_std);

      float acc[TO];
#pragma unroll
      for (int t = 0; t < TO; ++t) acc[t] = 0.0f;

      // Slice position (c, i, j) walked in C order across tiles: plane of c, input row/column of (i, j).
      const T* plane = xg;
      Index i = 0, j = 0, iy = iy0, ix = ix0;
      for (Index l0 = 0; l0 < g.slice; l0 += kTapTile) {
        const Index l_left = g.slice - l0;
        const int count = l_left < kTapTile ? static_cast<int>(l_left) : kTapTile;
        __syncthreads();  // the previous tile is no longer read
        for (int e = static_cast<int>(threadIdx.x); e < kTapTile * TO; e += kBlock) {
          const int t = e / kTapTile;
          const int k = e - t * kTapTile;
          filters[k][t] = (t < o_count && k < count) ? detail::load(w + (o_first + t) * g.slice + l0 + k) : 0.0f;
        }
        __syncthreads();
        if (!active) continue;
        for (int k = 0; k < count; ++k) {
          float s = detail::padded_load(plane, iy, ix, g.height, g.width);
          if (Normalize) s = static_cast<float>((static_cast<double>(s) - mean) * inv_std);
#pragma unroll
          for (int t = 0; t < TO; ++t) acc[t] += fabsf(s - filters[k][t]);
          ix += g.dilation_w;
          if (++j == g.kernel_w) {
            j = 0;
            ix = ix0;
            iy += g.dilation_h;
            if (++i == g.kernel_h) {
              i = 0;
              iy = iy0;
              plane += g.plane;
            }
          }
        }
      }

      if (!active) continue;
      T* out = y + (n * g.out_channels + o_first) * g.out_plane + out_pos;
#pragma unroll
      for (int t = 0; t < TO; ++t) {
        if (t < o_count) {
          const float b = bias != nullptr ? detail::load(bias + o_first + t) : 0.0f;
          detail::store(out + t * g.out_plane, b - acc[t]);
        }
      }
    }
  }
}

template <typename Index>
Add2dGeometry<Index> make_geometry(const Add2dParams& p, int64_t tile) {
  const Window2d& w = p.window;
  const int64_t group_in = w.channels / w.groups;
  const int64_t group_out = p.out_channels / w.groups;
  const int64_t out_tiles = detail::ceil_div(group_out, tile);
  Add2dGeometry<Index> g{};
  static_cast<detail::WindowGeometry<Index>&>(g) = detail::window_geometry<Index>(w);
  g.group_in = static_cast<Index>(group_in);
  g.group_out = static_cast<Index>(group_out);
  g.slice = static_cast<Index>(group_in * w.kernel_h * w.kernel_w);
  g.out_channels = static_cast<Index>(p.out_channels);
  g.pixels = static_cast<Index>(w.batch * w.out_h * w.out_w);
  g.pixel_blocks = static_cast<Index>(detail::ceil_div(w.batch * w.out_h * w.out_w, kBlock));
  g.out_tiles = static_cast<Index>(out_tiles);
  g.group_tiles = static_cast<Index>(w.groups * out_tiles);
  g.eps = p.eps;
  return g;
}

// ---------------------------------------------------------------------------------------------------------------
// Implicit GEMM for groups of 16 or more output channels without slice normalisation: per group, Y (C_out/group x
// pixels) = bias - sum_k |S (pixels x slice)^T - W (C_out/group x slice)|, S gathered from the zero-padded input on
// the fly. A block of kGemmThreads threads owns a BM x BN tile (output channels x output pixels) and walks the slice
// kGemmBK taps at a time through two shared-memory buffers (the next tile's global loads are issued into registers
// before the current one is consumed); each thread accumulates a TM x TN register micro-tile, so every |a - b| reads
// two registers. Edges (channels past the group, pixels past the batch, taps past the slice) load zeros and are not
// stored: |0 - 0| adds nothing. Accumulation order per output is fixed (deterministic, no atomics).

constexpr int kGemmThreads = 256;
constexpr int kGemmBK = 16;

template <int BM, int BN, int TM, int TN>
struct GemmTile {
  static constexpr int kBM = BM, kBN = BN, kTM = TM, kTN = TN;
  static_assert((BM / TM) * (BN / TN) == kGemmThreads, "one micro-tile per thread");
  static_assert((kGemmBK * BN) % kGemmThreads == 0 && (kGemmBK * BM) % kGemmThreads == 0, "whole loads per thread");
  static_assert(kGemmThreads % BN == 0, "each thread gathers one fixed pixel column of the S tile");
  static constexpr int kSLoads = kGemmBK * BN / kGemmThreads;  // S elements per thread per tile
  static constexpr int kWLoads = kGemmBK * BM / kGemmThreads;  // W elements per thread per tile
};

// 64 x 64 tiles where the grid has blocks to spare; 32 x 32 when 64 x 64 would leave most of the GPU idle (batch 1);
// 16 x 64 for groups of 16 to 31 channels.
using GemmLarge = GemmTile<64, 64, 4, 4>;
using GemmSmall = GemmTile<32, 32, 2, 2>;
using GemmNarrow = GemmTile<16, 64, 1, 4>;
constexpr int64_t kGemmBusyBlocks = 256;  // fewer 64 x 64 blocks than this: use 32 x 32

template <typename Index>
struct GemmGeometry : detail::WindowGeometry<Index> {
  Index group_in, group_out, slice, taps;  // taps = kH * kW
  Index out_channels, pixels, pixel_tiles, channel_tiles, group_tiles;  // group_tiles = groups * channel_tiles
};

template <typename Tile, typename Index, typename T>
__global__ void __launch_bounds__(kGemmThreads)
    add2d_gemm_kernel(const GemmGeometry<Index> g, const T* __restrict__ x, const T* __restrict__ w,
                      const T* __restrict__ bias, T* __restrict__ y) {
  constexpr int BM = Tile::kBM, BN = Tile::kBN, TM = Tile::kTM, TN = Tile::kTN;
  __shared__ __align__(16) float s_tile[2][kGemmBK][BN];  // [buffer][tap][pixel]
  __shared__ __align__(16) float w_tile[2][kGemmBK][BM];  // [buffer][tap][channel]
  const int t = static_cast<int>(threadIdx.x);
  const int tx = t % (BN / TN);  // micro-tile column: pixels tx * TN ..
  const int ty = t / (BN / TN);  // micro-tile row: channels ty * TM ..
  const int s_col = t % BN;      // the pixel column this thread gathers
  const int s_row = t / BN;      // first tap row it gathers (then every kGemmThreads / BN rows)
  const Index k_tiles = (g.slice + kGemmBK - 1) / kGemmBK;

  for (Index gt = blockIdx.y; gt < g.group_tiles; gt += gridDim.y) {
    const Index group = gt / g.channel_tiles;
    const Index o_first = (gt - group * g.channel_tiles) * BM;  // within the group
    const T* wg = w + (group * g.group_out) * g.slice;
    for (Index pt = blockIdx.x; pt < g.pixel_tiles; pt += gridDim.x) {
      const Index p_first = pt * BN;
      // The gathered pixel: its image and window origin, fixed for the whole slice walk.
      const Index pixel = p_first + s_col;
      const bool pixel_ok = pixel < g.pixels;
      Index n = 0, iy0 = 0, ix0 = 0;
      if (pixel_ok) {
        n = pixel / g.out_plane;
        const Index pos = pixel - n * g.out_plane;
        const Index oy = pos / g.out_w;
        iy0 = oy * g.stride_h - g.pad_top;
        ix0 = (pos - oy * g.out_w) * g.stride_w - g.pad_left;
      }
      const T* xg = x + (n * g.channels + group * g.group_in) * g.plane;

      float s_next[Tile::kSLoads];
      float w_next[Tile::kWLoads];
      auto gather = [&](Index k0) {
#pragma unroll
        for (int r = 0; r < Tile::kSLoads; ++r) {
          const Index k = k0 + s_row + r * (kGemmThreads / BN);
          float value = 0.0f;
          if (pixel_ok && k < g.slice) {
            const Index c = k / g.taps;
            const Index tap = k - c * g.taps;
            const Index i = tap / g.kernel_w;
            const Index j = tap - i * g.kernel_w;
            value = detail::padded_load(xg + c * g.plane, iy0 + i * g.dilation_h, ix0 + j * g.dilation_w, g.height,
                                        g.width);
          }
          s_next[r] = value;
        }
#pragma unroll
        for (int r = 0; r < Tile::kWLoads; ++r) {
          const int e = t + r * kGemmThreads;  // consecutive threads read consecutive taps of one filter
          const int kk = e % kGemmBK;
          const Index o = o_first + e / kGemmBK;
          const Index k = k0 + kk;
          w_next[r] = (o < g.group_out && k < g.slice) ? detail::load(wg + o * g.slice + k) : 0.0f;
        }
      };
      auto stage = [&](int buffer) {
#pragma unroll
        for (int r = 0; r < Tile::kSLoads; ++r) s_tile[buffer][s_row + r * (kGemmThreads / BN)][s_col] = s_next[r];
#pragma unroll
        for (int r = 0; r < Tile::kWLoads; ++r) {
          const int e = t + r * kGemmThreads;
          w_tile[buffer][e % kGemmBK][e / kGemmBK] = w_next[r];
        }
      };

      float acc[TM][TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
      }
      __syncthreads();  // the previous tile's last buffer is no longer read
      if (k_tiles > 0) {
        gather(0);
        stage(0);
      }
      __syncthreads();
      for (Index kt = 0; kt < k_tiles; ++kt) {
        const int buffer = static_cast<int>(kt & 1);
        if (kt + 1 < k_tiles) gather((kt + 1) * kGemmBK);  // in flight while this tile is consumed
#pragma unroll
        for (int kk = 0; kk < kGemmBK; ++kk) {
          float a[TM], b[TN];
#pragma unroll
          for (int i = 0; i < TM; ++i) a[i] = w_tile[buffer][kk][ty * TM + i];
#pragma unroll
          for (int j = 0; j < TN; ++j) b[j] = s_tile[buffer][kk][tx * TN + j];
#pragma unroll
          for (int i = 0; i < TM; ++i) {
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] += fabsf(b[j] - a[i]);
          }
        }
        if (kt + 1 < k_tiles) stage(buffer ^ 1);  // the other buffer: last read before the previous barrier
        __syncthreads();
      }

#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const Index p = p_first + tx * TN + j;
        if (p >= g.pixels) continue;
        const Index pn = p / g.out_plane;
        T* out = y + (pn * g.out_channels + group * g.group_out) * g.out_plane + (p - pn * g.out_plane);
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const Index o = o_first + ty * TM + i;
          if (o >= g.group_out) continue;
          const float b = bias != nullptr ? detail::load(bias + group * g.group_out + o) : 0.0f;
          detail::store(out + o * g.out_plane, b - acc[i][j]);
        }
      }
    }
  }
}

template <typename Tile, typename Index, typename T>
cudaError_t launch_gemm(const Add2dParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  const Window2d& win = p.window;
  GemmGeometry<Index> g{};
  static_cast<detail::WindowGeometry<Index>&>(g) = detail::window_geometry<Index>(win);
  const int64_t group_in = win.channels / win.groups;
  const int64_t group_out = p.out_channels / win.groups;
  const int64_t pixels = win.batch * win.out_h * win.out_w;
  const int64_t channel_tiles = detail::ceil_div(group_out, Tile::kBM);
  g.group_in = static_cast<Index>(group_in);
  g.group_out = static_cast<Index>(group_out);
  g.taps = static_cast<Index>(win.kernel_h * win.kernel_w);
  g.slice = static_cast<Index>(group_in * win.kernel_h * win.kernel_w);
  g.out_channels = static_cast<Index>(p.out_channels);
  g.pixels = static_cast<Index>(pixels);
  g.pixel_tiles = static_cast<Index>(detail::ceil_div(pixels, Tile::kBN));
  g.channel_tiles = static_cast<Index>(channel_tiles);
  g.group_tiles = static_cast<Index>(win.groups * channel_tiles);
  const dim3 grid(detail::grid_extent(static_cast<int64_t>(g.pixel_tiles), detail::kMaxGridX),
                  detail::grid_extent(static_cast<int64_t>(g.group_tiles), detail::kMaxGridY));
  add2d_gemm_kernel<Tile, Index><<<grid, kGemmThreads, 0, stream>>>(g, x, w, bias, y);
  return cudaGetLastError();
}

template <typename Index, typename T>
cudaError_t launch_gemm_for_shape(const Add2dParams& p, const T* x, const T* w, const T* bias, T* y,
                                  cudaStream_t stream) {
  const int64_t group_out = p.out_channels / p.window.groups;
  if (group_out < 32) return launch_gemm<GemmNarrow, Index>(p, x, w, bias, y, stream);
  const int64_t pixels = p.window.batch * p.window.out_h * p.window.out_w;
  const int64_t large_blocks =
      p.window.groups * detail::ceil_div(group_out, GemmLarge::kBM) * detail::ceil_div(pixels, GemmLarge::kBN);
  if (large_blocks >= kGemmBusyBlocks) return launch_gemm<GemmLarge, Index>(p, x, w, bias, y, stream);
  return launch_gemm<GemmSmall, Index>(p, x, w, bias, y, stream);
}

// ---------------------------------------------------------------------------------------------------------------
// Direct kernel launchers: small groups (depthwise-like) and normalize_slices.

template <typename Index, int TO, typename T>
cudaError_t launch_tiled(const Add2dParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  const Add2dGeometry<Index> g = make_geometry<Index>(p, TO);
  const dim3 grid(detail::grid_extent(static_cast<int64_t>(g.pixel_blocks), detail::kMaxGridX),
                  detail::grid_extent(static_cast<int64_t>(g.group_tiles), detail::kMaxGridY));
  if (p.normalize_slices) {
    add2d_kernel<Index, TO, true><<<grid, kBlock, 0, stream>>>(g, x, w, bias, y);
  } else {
    add2d_kernel<Index, TO, false><<<grid, kBlock, 0, stream>>>(g, x, w, bias, y);
  }
  return cudaGetLastError();
}

// The implicit GEMM for groups of 16 or more channels without normalisation; otherwise the direct kernel with the
// widest channel tile that the group fills (fewer wasted accumulators for small groups, depthwise-like), which also
// computes each slice's statistics once per pixel and channel tile.
template <typename Index, typename T>
cudaError_t launch_for_group(const Add2dParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  const int64_t group_out = p.out_channels / p.window.groups;
  if (group_out >= 16 && !p.normalize_slices) return launch_gemm_for_shape<Index>(p, x, w, bias, y, stream);
  if (group_out >= 16) return launch_tiled<Index, 16>(p, x, w, bias, y, stream);
  if (group_out >= 8) return launch_tiled<Index, 8>(p, x, w, bias, y, stream);
  if (group_out >= 4) return launch_tiled<Index, 4>(p, x, w, bias, y, stream);
  if (group_out >= 2) return launch_tiled<Index, 2>(p, x, w, bias, y, stream);
  return launch_tiled<Index, 1>(p, x, w, bias, y, stream);
}

template <typename T>
cudaError_t Add2dAny(const Add2dParams& p, const T* x, const T* w, const T* bias_or_null, T* y, cudaStream_t stream) {
  const Window2d& win = p.window;
  if (!detail::valid_window(win) || p.out_channels < 0 || p.out_channels % win.groups != 0 || !(p.eps >= 0.0f)) {
    return cudaErrorInvalidValue;
  }
  if (p.has_bias != (bias_or_null != nullptr)) return cudaErrorInvalidValue;
  const int64_t x_numel = win.batch * win.channels * win.height * win.width;
  const int64_t w_numel = p.out_channels * (win.channels / win.groups) * win.kernel_h * win.kernel_w;
  const int64_t y_numel = win.batch * p.out_channels * win.out_h * win.out_w;
  if (y_numel == 0) return cudaSuccess;
  if (y == nullptr || (x_numel > 0 && x == nullptr) || (w_numel > 0 && w == nullptr)) return cudaErrorInvalidValue;
  if (detail::fits_int32({x_numel, w_numel, y_numel})) {
    return launch_for_group<int32_t>(p, x, w, bias_or_null, y, stream);
  }
  return launch_for_group<int64_t>(p, x, w, bias_or_null, y, stream);
}

}  // namespace

cudaError_t Add2dCuda(const Add2dParams& p, const float* x, const float* w, const float* bias_or_null, float* y,
                      cudaStream_t stream) {
  return Add2dAny(p, x, w, bias_or_null, y, stream);
}

cudaError_t Add2dCudaHalf(const Add2dParams& p, const __half* x, const __half* w, const __half* bias_or_null,
                          __half* y, cudaStream_t stream) {
  return Add2dAny(p, x, w, bias_or_null, y, stream);
}

}  // namespace holocron::kernels::cuda
