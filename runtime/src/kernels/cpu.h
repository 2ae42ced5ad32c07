// float32 CPU kernels of the holocron ops (semantics: holocron/ops/contract.py). Pure functions on raw pointers
// and the params of params.h, free of onnxruntime types. Callers validate the params first (ops/<op>.cc):
// the kernels trust the shapes they describe. Work is split into tasks run through `parallel`; scratch memory is
// small and per task. They throw std::bad_alloc when scratch memory cannot be allocated, nothing else.
#pragma once
#include "kernels/parallel.h"
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

}  // namespace holocron::kernels
