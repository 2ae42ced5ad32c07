// float32 CPU kernels of the holocron ops (semantics: holocron/ops/contract.py). Pure functions on raw pointers
// and the params of params.h, free of onnxruntime types. Callers validate the params first (ops/<op>.cc):
// the kernels trust the shapes they describe. Work is split into tasks run through `parallel`; scratch memory is
// small and per task. They throw std::bad_alloc when scratch memory cannot be allocated, nothing else.
#pragma once
#include <cstdint>

#include "kernels/cpu/parallel.h"
#include "kernels/params.h"

namespace holocron::kernels {

// Y (N, C_out, H_out, W_out) from X (N, C_in, H, W), W (C_out, C_in / group, kH, kW) and, when p.has_bias, B (C_out).
void Add2dCpu(const Add2dParams& p, const float* x, const float* w, const float* bias, float* y,
              const ParallelFor& parallel);

// Y (N, C, H_out, W_out) from X (N, C, H, W) and the per-pixel kernels K (N, group * kH * kW, H_out, W_out).
void Involution2dCpu(const Involution2dParams& p, const float* x, const float* kernel, float* y,
                     const ParallelFor& parallel);

// Y (N, heads * V, H, W) from Q (N, heads * K, H, W), keys (N, K * U, H, W), values (N, V * U, H, W) and the
// positional parameter: R (K, U, 1, r, r) when p.local, E (H * W, H * W, K, U) otherwise.
void LambdaCpu(const LambdaParams& p, const float* q, const float* keys, const float* values, const float* position,
               float* y, const ParallelFor& parallel);

// float16 variants: the same ops on IEEE binary16 tensors (raw 16-bit patterns, see half.h). They compute in
// float32: inputs are converted to float scratch and the float32 kernels above run on it, one chunk of images at a
// time, so the extra memory is bounded by a few MiB plus one image, and the weights (W and B, R or E) are converted
// once per call. Results are rounded to nearest even.
void Add2dCpuHalf(const Add2dParams& p, const uint16_t* x, const uint16_t* w, const uint16_t* bias, uint16_t* y,
                  const ParallelFor& parallel);
void Involution2dCpuHalf(const Involution2dParams& p, const uint16_t* x, const uint16_t* kernel, uint16_t* y,
                         const ParallelFor& parallel);
void LambdaCpuHalf(const LambdaParams& p, const uint16_t* q, const uint16_t* keys, const uint16_t* values,
                   const uint16_t* position, uint16_t* y, const ParallelFor& parallel);

}  // namespace holocron::kernels
