// Plain-data descriptions of one call of each holocron kernel. Free of onnxruntime types so the kernels
// (CPU and CUDA) can be compiled and tested on their own; the onnxruntime glue fills them after validation.
#pragma once
#include <cstdint>

namespace holocron::kernels {

// Output length of a sliding window along one axis: the convolution formula of holocron/ops/contract.py
// (conv_output_size), the only C++ spelling of it. 0 when the dilated window does not fit the padded input or the
// stride is not positive; the span is formed in 128 bits, so no input dims or attribute values can overflow it.
inline int64_t ConvOutputSize(int64_t size, int64_t kernel, int64_t stride, int64_t pad_begin, int64_t pad_end,
                              int64_t dilation) {
  const __int128 span =
      static_cast<__int128>(size) + pad_begin + pad_end - static_cast<__int128>(dilation) * (kernel - 1) - 1;
  if (span < 0 || stride <= 0) return 0;
  const __int128 out = span / stride + 1;
  return out > INT64_MAX ? 0 : static_cast<int64_t>(out);
}

// Geometry of a 2-D sliding window over an NCHW input; out_h/out_w follow ConvOutputSize.
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
