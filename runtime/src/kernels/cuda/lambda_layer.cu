// Lambda layer: Y[n, h * V + v, p] = sum_k Q[n, h * K + k, p] * (Lc[n, k, v] + Lp[n, k, v, p]) with the content
// lambda Lc built from the softmaxed keys and the position lambda Lp from R (local) or E (global).
#include <cmath>
#include <type_traits>

#include "common.cuh"
#include "launch.h"

namespace holocron::kernels::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kSoftmaxBlock = 256;
constexpr int kContentBlock = 256;  // 8 warps, one (n, k, v) each
constexpr int kLocalBlock = 128;
constexpr int kLocalKeys = 8;         // keys accumulated per pass of the local kernel
constexpr int kLocalTapTile = 128;    // R taps per shared-memory tile
constexpr int kGlobalBlock = 256;
constexpr int kConvertBlock = 256;
constexpr int64_t kWorkspaceAlign = 64;  // floats: the content lambda starts 256-byte aligned

struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};

template <typename Op>
__device__ __forceinline__ float warp_reduce(float value, Op op) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Reduction over the whole block (blockDim.x a multiple of 32), result in every thread. `scratch` holds one float
// per warp; the leading barrier lets consecutive calls reuse it.
template <typename Op>
__device__ float block_reduce(float value, Op op, float* scratch) {
  value = warp_reduce(value, op);
  __syncthreads();
  if (threadIdx.x % kWarp == 0) scratch[threadIdx.x / kWarp] = value;
  __syncthreads();
  value = scratch[0];
  for (unsigned int w = 1; w < blockDim.x / kWarp; ++w) value = op(value, scratch[w]);
  return value;
}

// out[row, m] = exp(in[row, m] - max_m in[row]) / sum_m exp(in[row, m] - max_m in[row]); one block per row.
template <typename Index, typename T>
__global__ void __launch_bounds__(kSoftmaxBlock)
    softmax_rows_kernel(const T* __restrict__ in, float* __restrict__ out, Index rows, Index length) {
  __shared__ float scratch[kSoftmaxBlock / kWarp];
  for (Index row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* src = in + row * length;
    float* dst = out + row * length;
    float row_max = -INFINITY;
    for (Index m = threadIdx.x; m < length; m += kSoftmaxBlock) row_max = fmaxf(row_max, detail::load(src + m));
    row_max = block_reduce(row_max, Max{}, scratch);
    float total = 0.0f;
    for (Index m = threadIdx.x; m < length; m += kSoftmaxBlock) total += expf(detail::load(src + m) - row_max);
    total = block_reduce(total, Sum{}, scratch);
    for (Index m = threadIdx.x; m < length; m += kSoftmaxBlock) dst[m] = expf(detail::load(src + m) - row_max) / total;
  }
}

// Lc[n, k, v] = sum_{u, m} Ks[n, k * U + u, m] * V[n, v * U + u, m]: a dot product of two contiguous rows of
// U * H * W floats; one warp per (n, k, v).
template <typename Index, typename T>
__global__ void __launch_bounds__(kContentBlock)
    content_lambda_kernel(const float* __restrict__ keys, const T* __restrict__ v, float* __restrict__ lc,
                          Index batch, Index dim_k, Index dim_v, Index length) {
  constexpr int kWarps = kContentBlock / kWarp;
  const Index items = batch * dim_k * dim_v;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  for (Index item = static_cast<Index>(blockIdx.x) * kWarps + threadIdx.x / kWarp; item < items;
       item += static_cast<Index>(gridDim.x) * kWarps) {
    const Index vv = item % dim_v;
    const Index nk = item / dim_v;  // n * K + k
    const Index n = nk / dim_k;
    const float* key_row = keys + nk * length;
    const T* value_row = v + (n * dim_v + vv) * length;
    float acc = 0.0f;
    for (Index m = lane; m < length; m += kWarp) acc += __ldg(key_row + m) * detail::load(value_row + m);
    acc = warp_reduce(acc, Sum{});
    if (lane == 0) lc[item] = acc;
  }
}

template <typename Index>
struct LambdaGeometry {
  Index heads, dim_k, dim_u, dim_v, height, width, plane;  // plane = H * W positions
  Index r, half, taps;  // local: taps = U * r * r, half = r / 2
  Index items, item_blocks;  // local: items = N * V * H * W, position fastest
  Index batch;
};

// Y[n, h * V + v, p] += sum_{k in chunk} Q[n, h * K + k, p] * (Lc[n, k, v] + Lp[n, k, v, p]) over chunks of
// kLocalKeys keys, Lp[n, k, v, p] = sum_{u, i, j} R[k, u, 0, i, j] * V[n, v * U + u, py + i - r / 2, px + j - r / 2]
// (zero padded). One thread per (n, v, p); R tiles staged in shared memory and read as broadcasts.
template <typename Index, typename T>
__global__ void __launch_bounds__(kLocalBlock)
    lambda_local_kernel(const LambdaGeometry<Index> g, const T* __restrict__ q, const T* __restrict__ v,
                        const T* __restrict__ r_kernel, const float* __restrict__ lc, float* __restrict__ y) {
  __shared__ __align__(16) float taps_s[kLocalTapTile][kLocalKeys];  // [tap][key of the chunk]

  for (Index block = blockIdx.x; block < g.item_blocks; block += gridDim.x) {
    const Index item = block * kLocalBlock + static_cast<Index>(threadIdx.x);
    const bool active = item < g.items;
    Index n = 0, vv = 0, p = 0, py = 0, px = 0;
    if (active) {
      p = item % g.plane;
      const Index nv = item / g.plane;
      vv = nv % g.dim_v;
      n = nv / g.dim_v;
      py = p / g.width;
      px = p - py * g.width;
    }
    const T* value_planes = v + (n * g.dim_v + vv) * g.dim_u * g.plane;
    const Index iy0 = py - g.half;
    const Index ix0 = px - g.half;

    for (Index k0 = 0; k0 < g.dim_k; k0 += kLocalKeys) {
      const Index k_left = g.dim_k - k0;
      const int k_count = k_left < kLocalKeys ? static_cast<int>(k_left) : kLocalKeys;
      float lp[kLocalKeys];
#pragma unroll
      for (int t = 0; t < kLocalKeys; ++t) lp[t] = 0.0f;

      // Tap (u, i, j) walked in C order across tiles.
      const T* plane = value_planes;
      Index i = 0, j = 0, iy = iy0, ix = ix0;
      for (Index l0 = 0; l0 < g.taps; l0 += kLocalTapTile) {
        const Index l_left = g.taps - l0;
        const int count = l_left < kLocalTapTile ? static_cast<int>(l_left) : kLocalTapTile;
        __syncthreads();  // the previous tile is no longer read
        for (int e = static_cast<int>(threadIdx.x); e < kLocalTapTile * kLocalKeys; e += kLocalBlock) {
          const int t = e / kLocalTapTile;
          const int l = e - t * kLocalTapTile;
          taps_s[l][t] = (t < k_count && l < count) ? detail::load(r_kernel + (k0 + t) * g.taps + l0 + l) : 0.0f;
        }
        __syncthreads();
        if (!active) continue;
        for (int l = 0; l < count; ++l) {
          const float value = detail::padded_load(plane, iy, ix, g.height, g.width);
#pragma unroll
          for (int t = 0; t < kLocalKeys; ++t) lp[t] += taps_s[l][t] * value;
          ++ix;
          if (++j == g.r) {
            j = 0;
            ix = ix0;
            ++iy;
            if (++i == g.r) {
              i = 0;
              iy = iy0;
              plane += g.plane;
            }
          }
        }
      }
      if (!active) continue;

      const float* lc_chunk = lc + (n * g.dim_k + k0) * g.dim_v + vv;
      for (Index h = 0; h < g.heads; ++h) {
        const T* q_chunk = q + ((n * g.heads + h) * g.dim_k + k0) * g.plane + p;
        float out = 0.0f;
#pragma unroll
        for (int t = 0; t < kLocalKeys; ++t) {
          if (t < k_count) out += detail::load(q_chunk + t * g.plane) * (__ldg(lc_chunk + t * g.dim_v) + lp[t]);
        }
        float* dst = y + ((n * g.heads + h) * g.dim_v + vv) * g.plane + p;
        *dst = k0 == 0 ? out : *dst + out;
      }
    }
  }
}

// Global position lambda: one block per (n, p); threads over (k, v) pairs of a chunk, k fastest, compute
// L[k, v] = Lc[n, k, v] + sum_{m, u} E[p, m, k, u] * V[n, v * U + u, m] into shared memory, then threads over
// (h, v) add sum_k Q[n, h * K + k, p] * L[k, v] to Y. key_chunk * value_chunk <= kGlobalBlock.
template <typename Index, typename T>
__global__ void __launch_bounds__(kGlobalBlock)
    lambda_global_kernel(const LambdaGeometry<Index> g, int key_chunk, int value_chunk, const T* __restrict__ q,
                         const T* __restrict__ v, const T* __restrict__ e, const float* __restrict__ lc,
                         float* __restrict__ y) {
  __shared__ float lambda_s[kGlobalBlock];  // [v of the chunk][k of the chunk]
  const int t = static_cast<int>(threadIdx.x);
  const int kl = t % key_chunk;
  const int vl = t / key_chunk;
  const Index positions = g.batch * g.plane;
  const Index e_stride = g.dim_k * g.dim_u;  // between consecutive m of E[p]

  for (Index item = blockIdx.x; item < positions; item += gridDim.x) {
    const Index n = item / g.plane;
    const Index p = item - n * g.plane;
    for (Index v0 = 0; v0 < g.dim_v; v0 += value_chunk) {
      const Index v_left = g.dim_v - v0;
      const int v_count = v_left < value_chunk ? static_cast<int>(v_left) : value_chunk;
      for (Index k0 = 0; k0 < g.dim_k; k0 += key_chunk) {
        const Index k_left = g.dim_k - k0;
        const int k_count = k_left < key_chunk ? static_cast<int>(k_left) : key_chunk;
        if (vl < v_count && kl < k_count) {
          const Index k = k0 + kl;
          const Index vv = v0 + vl;
          const T* e_row = e + (p * g.plane * g.dim_k + k) * g.dim_u;  // E[p, 0, k, 0]
          const T* value_planes = v + (n * g.dim_v + vv) * g.dim_u * g.plane;
          float acc = 0.0f;
          for (Index m = 0; m < g.plane; ++m, e_row += e_stride) {
            for (Index u = 0; u < g.dim_u; ++u) {
              acc += detail::load(e_row + u) * detail::load(value_planes + u * g.plane + m);
            }
          }
          lambda_s[t] = __ldg(lc + (n * g.dim_k + k) * g.dim_v + vv) + acc;
        }
        __syncthreads();
        // The same thread owns each (h, v) across key chunks, so the read-modify-write of Y is race free.
        for (int o = t; o < g.heads * v_count; o += kGlobalBlock) {
          const Index h = o / v_count;
          const int vo = o - static_cast<int>(h) * v_count;
          const T* q_chunk = q + ((n * g.heads + h) * g.dim_k + k0) * g.plane + p;
          float out = 0.0f;
          for (int kk = 0; kk < k_count; ++kk) {
            out += detail::load(q_chunk + kk * g.plane) * lambda_s[vo * key_chunk + kk];
          }
          float* dst = y + ((n * g.heads + h) * g.dim_v + v0 + vo) * g.plane + p;
          *dst = k0 == 0 ? out : *dst + out;
        }
        __syncthreads();  // lambda_s is rewritten by the next chunk
      }
    }
  }
}

// out[i] = in[i] rounded to float16: the float16 output of Y, accumulated in float32 workspace.
template <typename Index>
__global__ void __launch_bounds__(kConvertBlock)
    to_half_kernel(const float* __restrict__ in, __half* __restrict__ out, Index count) {
  for (Index i = static_cast<Index>(blockIdx.x) * kConvertBlock + threadIdx.x; i < count;
       i += static_cast<Index>(gridDim.x) * kConvertBlock) {
    detail::store(out + i, in[i]);
  }
}

bool valid_params(const LambdaParams& p) {
  if (p.batch < 0 || p.heads < 1 || p.dim_k < 0 || p.dim_u < 0 || p.dim_v < 0 || p.height < 0 || p.width < 0) {
    return false;
  }
  return !p.local || (p.r >= 1 && p.r % 2 == 1);
}

int64_t keys_floats(const LambdaParams& p) { return p.batch * p.dim_k * p.dim_u * p.height * p.width; }

int64_t content_offset(const LambdaParams& p) {
  return detail::ceil_div(keys_floats(p), kWorkspaceAlign) * kWorkspaceAlign;
}

int64_t y_numel(const LambdaParams& p) { return p.batch * p.heads * p.dim_v * p.height * p.width; }

// float16 calls accumulate Y in float32 workspace after the content lambda, then round it once.
int64_t output_offset(const LambdaParams& p) {
  return detail::ceil_div(content_offset(p) + p.batch * p.dim_k * p.dim_v, kWorkspaceAlign) * kWorkspaceAlign;
}

int64_t workspace_floats(const LambdaParams& p, bool half) {
  return half ? output_offset(p) + y_numel(p) : content_offset(p) + p.batch * p.dim_k * p.dim_v;
}

template <typename Index>
LambdaGeometry<Index> make_geometry(const LambdaParams& p) {
  LambdaGeometry<Index> g{};
  g.batch = static_cast<Index>(p.batch);
  g.heads = static_cast<Index>(p.heads);
  g.dim_k = static_cast<Index>(p.dim_k);
  g.dim_u = static_cast<Index>(p.dim_u);
  g.dim_v = static_cast<Index>(p.dim_v);
  g.height = static_cast<Index>(p.height);
  g.width = static_cast<Index>(p.width);
  g.plane = static_cast<Index>(p.height * p.width);
  if (p.local) {
    g.r = static_cast<Index>(p.r);
    g.half = static_cast<Index>(p.r / 2);
    g.taps = static_cast<Index>(p.dim_u * p.r * p.r);
  }
  const int64_t items = p.batch * p.dim_v * p.height * p.width;
  g.items = static_cast<Index>(items);
  g.item_blocks = static_cast<Index>(detail::ceil_div(items, kLocalBlock));
  return g;
}

template <typename Index, typename T>
cudaError_t launch_indexed(const LambdaParams& p, const T* q, const T* k, const T* v, const T* pos, T* y,
                           float* workspace, cudaStream_t stream) {
  constexpr bool kHalf = std::is_same_v<T, __half>;
  const LambdaGeometry<Index> g = make_geometry<Index>(p);
  float* keys = workspace;
  float* lc = workspace + content_offset(p);
  float* y_float = nullptr;
  if constexpr (kHalf) {
    y_float = workspace + output_offset(p);
  } else {
    y_float = y;
  }

  const int64_t rows = p.batch * p.dim_k * p.dim_u;
  if (rows > 0 && g.plane > 0) {
    softmax_rows_kernel<Index><<<detail::grid_extent(rows, detail::kMaxGridX), kSoftmaxBlock, 0, stream>>>(
        k, keys, static_cast<Index>(rows), g.plane);
    if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
  }

  const int64_t content_items = p.batch * p.dim_k * p.dim_v;
  const int64_t content_blocks = detail::ceil_div(content_items, kContentBlock / kWarp);
  content_lambda_kernel<Index><<<detail::grid_extent(content_blocks, detail::kMaxGridX), kContentBlock, 0, stream>>>(
      keys, v, lc, g.batch, g.dim_k, g.dim_v, g.dim_u * g.plane);
  if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;

  if (p.local) {
    lambda_local_kernel<Index><<<detail::grid_extent(g.item_blocks, detail::kMaxGridX), kLocalBlock, 0, stream>>>(
        g, q, v, pos, lc, y_float);
  } else {
    const int key_chunk = static_cast<int>(std::min<int64_t>(p.dim_k, kGlobalBlock));
    const int value_chunk = static_cast<int>(std::min<int64_t>(p.dim_v, kGlobalBlock / key_chunk));
    lambda_global_kernel<Index>
        <<<detail::grid_extent(p.batch * p.height * p.width, detail::kMaxGridX), kGlobalBlock, 0, stream>>>(
            g, key_chunk, value_chunk, q, v, pos, lc, y_float);
  }
  if constexpr (kHalf) {
    if (const cudaError_t err = cudaGetLastError(); err != cudaSuccess) return err;
    const int64_t count = y_numel(p);
    to_half_kernel<Index><<<detail::grid_extent(detail::ceil_div(count, kConvertBlock), detail::kMaxGridX),
                            kConvertBlock, 0, stream>>>(y_float, y, static_cast<Index>(count));
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t LambdaAny(const LambdaParams& p, const T* q, const T* k, const T* v, const T* pos, T* y, void* workspace,
                      size_t workspace_bytes, cudaStream_t stream) {
  constexpr bool kHalf = std::is_same_v<T, __half>;
  if (!valid_params(p)) return cudaErrorInvalidValue;
  const int64_t plane = p.height * p.width;
  const int64_t y_numel = holocron::kernels::cuda::y_numel(p);
  if (y_numel == 0) return cudaSuccess;
  if (y == nullptr) return cudaErrorInvalidValue;
  if (p.dim_k == 0) return cudaMemsetAsync(y, 0, static_cast<size_t>(y_numel) * sizeof(T), stream);  // empty sum

  const int64_t q_numel = p.batch * p.heads * p.dim_k * plane;
  const int64_t k_numel = keys_floats(p);
  const int64_t v_numel = p.batch * p.dim_v * p.dim_u * plane;
  const int64_t pos_numel = p.local ? p.dim_k * p.dim_u * p.r * p.r : plane * plane * p.dim_k * p.dim_u;
  if (q == nullptr || (k_numel > 0 && k == nullptr) || (v_numel > 0 && v == nullptr) ||
      (pos_numel > 0 && pos == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (workspace == nullptr || workspace_bytes < LambdaCudaWorkspaceBytes(p, kHalf)) return cudaErrorInvalidValue;
  float* scratch = static_cast<float*>(workspace);
  if (detail::fits_int32({q_numel, k_numel, v_numel, pos_numel, y_numel, workspace_floats(p, kHalf)})) {
    return launch_indexed<int32_t>(p, q, k, v, pos, y, scratch, stream);
  }
  return launch_indexed<int64_t>(p, q, k, v, pos, y, scratch, stream);
}

}  // namespace

size_t LambdaCudaWorkspaceBytes(const LambdaParams& p, bool half) {
  if (!valid_params(p)) return 0;
  return static_cast<size_t>(workspace_floats(p, half)) * sizeof(float);
}

cudaError_t LambdaCuda(const LambdaParams& p, const float* q, const float* k, const float* v, const float* pos,
                       float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  return LambdaAny(p, q, k, v, pos, y, workspace, workspace_bytes, stream);
}

cudaError_t LambdaCudaHalf(const LambdaParams& p, const __half* q, const __half* k, const __half* v,
                           const __half* pos, __half* y, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  return LambdaAny(p, q, k, v, pos, y, workspace, workspace_bytes, stream);
}

}  // namespace holocron::kernels::cuda
