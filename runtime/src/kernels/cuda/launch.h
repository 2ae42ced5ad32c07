// CUDA float32 and float16 kernels of the holocron custom ops Add2d, Involution2d and Lambda (semantics:
// holocron/ops/contract.py). Pure CUDA, free of onnxruntime types; the onnxruntime glue validates the node, fills
// the params and calls these launchers with its compute stream.
//
// Thread layout:
// - Add2d, groups of 16 or more output channels without normalize_slices: an implicit GEMM. A block of 256 threads
//   owns a tile of output channels x output pixels (64 x 64, or 32 x 32 when 64 x 64 tiles would leave the GPU
//   mostly idle, or 16 x 64 for 16 to 31 channels), walks the slice 16 taps at a time through double-buffered shared
//   memory tiles of filters and gathered input windows, and accumulates a register micro-tile per thread
//   (4 x 4, 2 x 2 or 1 x 4 outputs). No split-K: the reduction stays in one thread, in a fixed order.
// - Add2d otherwise (small groups, normalize_slices): one thread per output pixel (n, y, x), 128 consecutive pixels
//   per block; blockIdx.y picks a channel group and a tile of up to 16 output channels, whose filters are staged in
//   shared memory 64 taps at a time and read as broadcasts; each thread keeps one accumulator per channel of the tile
//   and computes its slice's statistics once.
// - Involution2d: one thread per (n, group, 4 channels, output pixel), pixel fastest; each kernel tap is loaded once
//   and applied to the 4 channels.
// - Lambda: (1) softmax of the keys, one block per (n, k, u) row; (2) content lambda, one warp per (n, k, v);
//   (3a) local: one thread per (n, v, p), p fastest, R staged in shared memory, 8 keys at a time, Y accumulated in
//   place over key chunks; (3b) global: one block per (n, p), threads over (k, v) with k fastest so E is read
//   contiguously, Lc + Lp reduced over k through shared memory.
// float16 tensors (__half) are read into float32 and the results rounded to nearest even once; Lambda keeps its
// partial Y in float32 workspace for them.
// Numerics: float32 accumulation in a fixed order (deterministic, no atomics). normalize_slices uses a two-pass mean
// and biased variance over the zero-padded slice, then (s - mean) / sqrtf(var + eps). Softmax subtracts the row
// maximum and uses expf and a true division. Index arithmetic is 32-bit when every tensor has fewer than 2^30
// elements and 64-bit otherwise.
// Launchers only enqueue work on `stream`: no synchronization, no allocation. They return cudaSuccess without
// launching when the output is empty, cudaErrorInvalidValue for inconsistent params or null pointers to non-empty
// tensors, and otherwise cudaGetLastError() after the launches.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../params.h"

namespace holocron::kernels::cuda {

// Y (N, C_out, H_out, W_out) from X (N, C_in, H, W) and W (C_out, C_in / group, kH, kW). bias_or_null holds C_out
// floats and must be non-null exactly when p.has_bias.
cudaError_t Add2dCuda(const Add2dParams& p, const float* x, const float* w, const float* bias_or_null, float* y,
                      cudaStream_t stream);
cudaError_t Add2dCudaHalf(const Add2dParams& p, const __half* x, const __half* w, const __half* bias_or_null,
                          __half* y, cudaStream_t stream);

// Y (N, C, H_out, W_out) from X (N, C, H, W) and kernel (N, group * kH * kW, H_out, W_out).
cudaError_t Involution2dCuda(const Involution2dParams& p, const float* x, const float* kernel, float* y,
                             cudaStream_t stream);
cudaError_t Involution2dCudaHalf(const Involution2dParams& p, const __half* x, const __half* kernel, __half* y,
                                 cudaStream_t stream);

// Device bytes LambdaCuda needs as scratch: the softmaxed keys (N, K * U, H * W) and the content lambda
// (N, K, V), both float32, and for float16 tensors (half) Y accumulated in float32. 0 when params are invalid.
size_t LambdaCudaWorkspaceBytes(const LambdaParams& p, bool half = false);

// Y (N, heads * V, H, W) from Q (N, heads * K, H, W), k (N, K * U, H, W), v (N, V * U, H, W) and pos: R
// (K, U, 1, r, r) when p.local, E (H * W, H * W, K, U) otherwise. workspace must be device memory of at least
// LambdaCudaWorkspaceBytes(p) bytes, float-aligned, that `stream` may use until the launched work completes.
cudaError_t LambdaCuda(const LambdaParams& p, const float* q, const float* k, const float* v, const float* pos,
                       float* y, void* workspace, size_t workspace_bytes, cudaStream_t stream);
cudaError_t LambdaCudaHalf(const LambdaParams& p, const __half* q, const __half* k, const __half* v,
                           const __half* pos, __half* y, void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace holocron::kernels::cuda
