// Plain-data descriptions of one call of each holocron kernel. Free of onnxruntime types so the kernels
// (CPU and CUDA) can be compiled and tested on their own; the onnxruntime glue fills them after validation.
#pragma once
#include <cstdint>

namespace holocron::kernels {

// Geometry of a 2-D sliding window over an NCHW input. h_out/w_out follow the convolution formula.
struct Window2d {
  int64_t batch = 0;
  int64_t channels = 0;  // input channels
  int64_t height = 0;
  int64_t width = 0;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride_h = 1;
  int64_t stride_w = 1;
  int64_t pad_top = 0;
  int64_t pad_left = 0;
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  int64_t dilation_h = 1;
  int64_t dilation_w = 1;
  int64_t groups = 1;
  int64_t out_h = 0;
  int64_t out_w = 0;
};

// Add2d: Y = -sum |slice - W| + B, see holocron/ops/contract.py.
struct Add2dParams {
  Window2d window;
  int64_t out_channels = 0;
  bool has_bias = false;
  bool normalize_slices = false;
  float eps = 1e-14f;
};

// Involution2d: Y[n,c] = sum_taps K[n, g*taps + t] * X_pad[n, c, ...].
struct Involution2dParams {
  Window2d window;
};

// Lambda: content + positional lambdas applied to queries.
struct LambdaParams {
  int64_t batch = 0;
  int64_t heads = 0;
  int64_t dim_k = 0;
  int64_t dim_u = 0;
  int64_t dim_v = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool local = false;   // true: P is R (dim_k, dim_u, 1, r, r); false: P is E (hw, hw, dim_k, dim_u)
  int64_t r = 0;        // local receptive field (odd); 0 when global
};

}  // namespace holocron::kernels
