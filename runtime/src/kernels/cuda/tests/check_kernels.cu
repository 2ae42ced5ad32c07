// Standalone check of the holocron CUDA launchers against plain CPU references (double precision) written from
// holocron/ops/contract.py. Needs a CUDA GPU; build and run with run_check.sh. Prints one PASS/FAIL line per case
// with the largest error relative to the magnitude of the summed terms, and exits non-zero on any failure.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../launch.h"

namespace hk = holocron::kernels;
namespace hc = holocron::kernels::cuda;

namespace {

// Float32 sums of up to a few hundred terms stay well within this fraction of the summed magnitudes.
constexpr double kRelTol = 1e-5;
constexpr double kAbsTol = 1e-6;
constexpr size_t kGuard = 64;        // floats after each output, checked for out-of-bounds writes
constexpr float kGuardValue = 1234.5f;

int g_failures = 0;

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(err));
    std::exit(2);
  }
}

std::vector<float> random_vector(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (float& value : out) value = dist(rng);
  return out;
}

// Device copy of a host vector, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer(size_t floats, cudaStream_t stream) : floats_(floats) {
    if (floats_ > 0) check_cuda(cudaMalloc(&ptr_, floats_ * sizeof(float)), "cudaMalloc");
    static_cast<void>(stream);
  }
  DeviceBuffer(const std::vector<float>& host, cudaStream_t stream) : DeviceBuffer(host.size(), stream) {
    if (floats_ > 0) {
      check_cuda(cudaMemcpyAsync(ptr_, host.data(), floats_ * sizeof(float), cudaMemcpyHostToDevice, stream),
                 "upload");
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr_); }
  float* get() const { return ptr_; }

 private:
  size_t floats_;
  float* ptr_ = nullptr;
};

// Output buffer pre-filled with NaN (so unwritten outputs fail) followed by guard values (so overruns fail).
std::vector<float> poisoned_output(size_t n) {
  std::vector<float> host(n + kGuard, std::nanf(""));
  for (size_t i = n; i < host.size(); ++i) host[i] = kGuardValue;
  return host;
}

struct Reference {
  std::vector<double> value;
  std::vector<double> magnitude;  // sum of |terms| behind each value: the scale of its float32 rounding error
};

// Compares the device output (with its guard tail) with the reference and records PASS/FAIL.
// value_rel: extra tolerance relative to each value (float16 outputs: their final rounding, 2^-11).
void report(const std::string& name, const std::vector<float>& got, const Reference& ref, double value_rel = 0.0) {
  const size_t n = ref.value.size();
  double worst = 0.0;
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref.value[i]);
    const double tol = kAbsTol + kRelTol * ref.magnitude[i] + value_rel * std::fabs(ref.value[i]);
    if (!(err <= tol)) ++bad;  // NaN counts as bad
    const double scaled = err / (kAbsTol + ref.magnitude[i]);
    if (!(scaled <= worst)) worst = scaled;
  }
  size_t overrun = 0;
  const float guard = value_rel > 0.0 ? __half2float(__float2half_rn(kGuardValue)) : kGuardValue;
  for (size_t i = n; i < got.size(); ++i) overrun += got[i] != guard;
  const bool ok = bad == 0 && overrun == 0;
  if (!ok) ++g_failures;
  std::printf("%s %-48s outputs=%zu max_err/magnitude=%.3g bad=%zu guard_overwrites=%zu\n", ok ? "PASS" : "FAIL",
              name.c_str(), n, worst, bad, overrun);
}

void expect(bool condition, const std::string& name) {
  if (!condition) ++g_failures;
  std::printf("%s %s\n", condition ? "PASS" : "FAIL", name.c_str());
}

std::vector<float> download(const DeviceBuffer& buffer, size_t n, cudaStream_t stream) {
  std::vector<float> host(n);
  check_cuda(cudaMemcpyAsync(host.data(), buffer.get(), n * sizeof(float), cudaMemcpyDeviceToHost, stream),
             "download");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return host;
}

hk::Window2d make_window(int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                         std::vector<int64_t> pads, int64_t dh, int64_t dw, int64_t groups) {
  hk::Window2d win;
  win.batch = n;
  win.channels = c;
  win.height = h;
  win.width = w;
  win.kernel_h = kh;
  win.kernel_w = kw;
  win.stride_h = sh;
  win.stride_w = sw;
  win.pad_top = pads[0];
  win.pad_left = pads[1];
  win.pad_bottom = pads[2];
  win.pad_right = pads[3];
  win.dilation_h = dh;
  win.dilation_w = dw;
  win.groups = groups;
  win.out_h = hk::ConvOutputSize(h, kh, sh, pads[0], pads[2], dh);
  win.out_w = hk::ConvOutputSize(w, kw, sw, pads[1], pads[3], dw);
  return win;
}

// X_pad[n, c, iy, ix] with zero padding.
double padded(const std::vector<float>& x, const hk::Window2d& w, int64_t n, int64_t c, int64_t iy, int64_t ix) {
  if (iy < 0 || iy >= w.height || ix < 0 || ix >= w.width) return 0.0;
  return x[static_cast<size_t>(((n * w.channels + c) * w.height + iy) * w.width + ix)];
}

// ---------------------------------------------------------------------------------------------------------------
// Add2d

Reference add2d_reference(const hk::Add2dParams& p, const std::vector<float>& x, const std::vector<float>& wt,
                          const std::vector<float>* bias) {
  const hk::Window2d& w = p.window;
  const int64_t cg = w.channels / w.groups;
  const int64_t og = p.out_channels / w.groups;
  const int64_t slice_len = cg * w.kernel_h * w.kernel_w;
  Reference ref;
  std::vector<double> slice(static_cast<size_t>(slice_len));
  for (int64_t n = 0; n < w.batch; ++n) {
    for (int64_t o = 0; o < p.out_channels; ++o) {
      const int64_t g = o / og;
      for (int64_t y = 0; y < w.out_h; ++y) {
        for (int64_t xo = 0; xo < w.out_w; ++xo) {
          size_t l = 0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t i = 0; i < w.kernel_h; ++i) {
              for (int64_t j = 0; j < w.kernel_w; ++j) {
                slice[l++] = padded(x, w, n, g * cg + c, y * w.stride_h - w.pad_top + i * w.dilation_h,
                                    xo * w.stride_w - w.pad_left + j * w.dilation_w);
              }
            }
          }
          if (p.normalize_slices) {
            double mean = 0.0;
            for (double s : slice) mean += s;
            mean /= static_cast<double>(slice_len);
            double var = 0.0;
            for (double s : slice) var += (s - mean) * (s - mean);
            var /= static_cast<double>(slice_len);
            const double denom = std::sqrt(var + static_cast<double>(p.eps));
            for (double& s : slice) s = denom > 0.0 ? (s - mean) / denom : 0.0;  // var + eps == 0: normalises to 0
          }
          double sum = 0.0;
          for (int64_t e = 0; e < slice_len; ++e) {
            sum += std::fabs(slice[static_cast<size_t>(e)] - wt[static_cast<size_t>(o * slice_len + e)]);
          }
          const double b = bias != nullptr ? (*bias)[static_cast<size_t>(o)] : 0.0;
          ref.value.push_back(b - sum);
          ref.magnitude.push_back(std::fabs(b) + sum);
        }
      }
    }
  }
  return ref;
}

// x_fill: when given, the input is x_fill plus a few float32 ulps of noise per element (`ulps` at most): constant
// and near-constant windows, where the slice normalisation must not amplify float32 rounding of the mean.
void check_add2d(const std::string& name, const hk::Add2dParams& p, std::mt19937& rng, cudaStream_t stream,
                 float x_fill = 0.0f, int ulps = -1) {
  const hk::Window2d& w = p.window;
  auto x = random_vector(static_cast<size_t>(w.batch * w.channels * w.height * w.width), rng);
  if (ulps >= 0) {
    std::uniform_int_distribution<int> nudge(-ulps, ulps);
    for (float& value : x) {
      value = x_fill;
      for (int k = nudge(rng); k != 0; k += k > 0 ? -1 : 1) value = std::nextafter(value, k > 0 ? 1.0f : -1.0f);
    }
  }
  const auto wt = random_vector(
      static_cast<size_t>(p.out_channels * (w.channels / w.groups) * w.kernel_h * w.kernel_w), rng);
  const auto bias = random_vector(static_cast<size_t>(p.out_channels), rng);
  const size_t y_numel = static_cast<size_t>(w.batch * p.out_channels * w.out_h * w.out_w);
  DeviceBuffer dx(x, stream), dw(wt, stream), db(bias, stream), dy(poisoned_output(y_numel), stream);
  check_cuda(hc::Add2dCuda(p, dx.get(), dw.get(), p.has_bias ? db.get() : nullptr, dy.get(), stream),
             name.c_str());
  report(name, download(dy, y_numel + kGuard, stream), add2d_reference(p, x, wt, p.has_bias ? &bias : nullptr));
}

void run_add2d(std::mt19937& rng, cudaStream_t stream) {
  hk::Add2dParams p;
  p.window = make_window(2, 8, 9, 11, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1);
  p.out_channels = 6;
  p.has_bias = true;
  check_add2d("add2d 3x3 pad1 bias", p, rng, stream);

  p.window = make_window(2, 6, 13, 12, 3, 3, 2, 2, {0, 2, 1, 3}, 2, 2, 2);
  p.out_channels = 20;  // 10 per group: a full and a partial 8-channel tile
  p.has_bias = false;
  p.normalize_slices = true;
  check_add2d("add2d groups2 stride2 dil2 asym-pads norm no-bias", p, rng, stream);

  p.window = make_window(1, 8, 7, 9, 1, 3, 2, 1, {0, 1, 0, 1}, 1, 1, 4);
  p.out_channels = 4;  // one output channel per group
  p.has_bias = true;
  p.eps = 1e-5f;
  check_add2d("add2d groups4 1x3 stride(2,1) norm eps1e-5", p, rng, stream);

  p.window = make_window(2, 32, 8, 10, 3, 3, 1, 1, {2, 0, 0, 2}, 1, 2, 1);
  p.out_channels = 40;  // slice of 288 taps spans several filter tiles; 16-channel tiles, last partial
  p.has_bias = true;
  p.normalize_slices = false;
  p.eps = 1e-14f;
  check_add2d("add2d 288-tap slices 40 channels dil(1,2)", p, rng, stream);

  p.window = make_window(1, 2, 3, 2, 2, 2, 1, 1, {3, 3, 3, 3}, 1, 1, 1);
  p.out_channels = 3;  // border slices are all padding: zero variance
  p.normalize_slices = true;
  check_add2d("add2d all-padding slices norm", p, rng, stream);

  p.window = make_window(1, 8, 6, 6, 3, 3, 1, 1, {0, 0, 0, 0}, 1, 1, 1);
  p.out_channels = 5;
  p.eps = 1e-14f;  // the default: 1 / sqrt(eps) = 1e7 amplifies any float32 residue of the mean
  check_add2d("add2d norm constant 0.1 default eps", p, rng, stream, 0.1f, 0);
  check_add2d("add2d norm near-constant 0.1 (+-3 ulps) default eps", p, rng, stream, 0.1f, 3);
  p.eps = 0.0f;  // a zero-variance slice normalises to 0
  check_add2d("add2d norm constant 0.1 eps=0", p, rng, stream, 0.1f, 0);
  check_add2d("add2d norm near-constant eps=0", p, rng, stream, 0.1f, 2);
  p.eps = 1e-14f;

  // Implicit GEMM path (groups of >= 16 channels, no normalisation), each tile shape with partial edge tiles:
  // 64 x 64 (enough blocks), 32 x 32 (batch 1, few pixels), 16 x 64 (16..31 channels), odd sizes everywhere.
  p.normalize_slices = false;
  p.has_bias = true;
  p.window = make_window(1, 3, 131, 129, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1);
  p.out_channels = 100;  // 64 + 36 channels; 16899 pixels (264 tiles of 64, last partial); slice 27 (16 + 11 taps)
  check_add2d("add2d gemm 64x64 tiles 100 channels odd image", p, rng, stream);
  p.window = make_window(1, 5, 9, 7, 3, 2, 2, 1, {1, 0, 2, 1}, 1, 2, 1);
  p.out_channels = 33;  // 32 + 1 channels; 5 x 6 = 30 pixels: one partial 32-pixel tile
  check_add2d("add2d gemm 32x32 tiles 33 channels stride(2,1) dil(1,2)", p, rng, stream);
  p.window = make_window(3, 14, 5, 6, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 2);
  p.out_channels = 46;  // two groups of 23 (16 + 7); slice 63; pixels cross image boundaries inside a tile
  p.has_bias = false;
  check_add2d("add2d gemm 16x64 tiles groups2 23 channels no-bias", p, rng, stream);

  p.window = make_window(0, 4, 5, 5, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1);
  p.out_channels = 4;
  p.has_bias = false;
  expect(hc::Add2dCuda(p, nullptr, nullptr, nullptr, nullptr, stream) == cudaSuccess, "add2d empty batch");
  p.window = make_window(1, 4, 5, 5, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1);
  p.window.out_h += 1;
  expect(hc::Add2dCuda(p, nullptr, nullptr, nullptr, nullptr, stream) == cudaErrorInvalidValue,
         "add2d inconsistent out_h rejected");
}

// ---------------------------------------------------------------------------------------------------------------
// Involution2d

Reference involution_reference(const hk::Window2d& w, const std::vector<float>& x, const std::vector<float>& k) {
  const int64_t cg = w.channels / w.groups;
  const int64_t taps = w.kernel_h * w.kernel_w;
  Reference ref;
  for (int64_t n = 0; n < w.batch; ++n) {
    for (int64_t c = 0; c < w.channels; ++c) {
      const int64_t g = c / cg;
      for (int64_t y = 0; y < w.out_h; ++y) {
        for (int64_t xo = 0; xo < w.out_w; ++xo) {
          double sum = 0.0, mag = 0.0;
          for (int64_t i = 0; i < w.kernel_h; ++i) {
            for (int64_t j = 0; j < w.kernel_w; ++j) {
              const double kv =
                  k[static_cast<size_t>(((n * w.groups * taps + g * taps + i * w.kernel_w + j) * w.out_h + y) *
                                            w.out_w +
                                        xo)];
              const double xv = padded(x, w, n, c, y * w.stride_h - w.pad_top + i * w.dilation_h,
                                       xo * w.stride_w - w.pad_left + j * w.dilation_w);
              sum += kv * xv;
              mag += std::fabs(kv * xv);
            }
          }
          ref.value.push_back(sum);
          ref.magnitude.push_back(mag);
        }
      }
    }
  }
  return ref;
}

void check_involution(const std::string& name, const hk::Window2d& w, std::mt19937& rng, cudaStream_t stream) {
  const auto x = random_vector(static_cast<size_t>(w.batch * w.channels * w.height * w.width), rng);
  const auto k = random_vector(
      static_cast<size_t>(w.batch * w.groups * w.kernel_h * w.kernel_w * w.out_h * w.out_w), rng);
  const size_t y_numel = static_cast<size_t>(w.batch * w.channels * w.out_h * w.out_w);
  DeviceBuffer dx(x, stream), dk(k, stream), dy(poisoned_output(y_numel), stream);
  hk::Involution2dParams p;
  p.window = w;
  check_cuda(hc::Involution2dCuda(p, dx.get(), dk.get(), dy.get(), stream), name.c_str());
  report(name, download(dy, y_numel + kGuard, stream), involution_reference(w, x, k));
}

void run_involution(std::mt19937& rng, cudaStream_t stream) {
  check_involution("involution 3x3 pad1 groups2", make_window(2, 8, 9, 9, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 2), rng,
                   stream);
  check_involution("involution 3x5 stride2 dil2 asym-pads groups3",
                   make_window(2, 12, 11, 13, 3, 5, 2, 2, {1, 0, 2, 3}, 2, 2, 3), rng, stream);
  check_involution("involution 7x7 pad3 6 channels per group",
                   make_window(1, 6, 10, 8, 7, 7, 1, 1, {3, 3, 3, 3}, 1, 1, 1), rng, stream);
  check_involution("involution depthwise groups3 stride(1,2)",
                   make_window(2, 3, 6, 9, 3, 3, 1, 2, {0, 1, 2, 0}, 1, 1, 3), rng, stream);
  hk::Involution2dParams empty;
  empty.window = make_window(2, 0, 6, 9, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1);
  expect(hc::Involution2dCuda(empty, nullptr, nullptr, nullptr, stream) == cudaSuccess,
         "involution empty channels");
}

// ---------------------------------------------------------------------------------------------------------------
// Lambda

// Softmax over positions of each (n, k * U + u) row, in double.
std::vector<double> softmax_keys(const hk::LambdaParams& p, const std::vector<float>& k) {
  const int64_t hw = p.height * p.width;
  std::vector<double> out(k.size());
  for (int64_t row = 0; row < p.batch * p.dim_k * p.dim_u; ++row) {
    double mx = -INFINITY;
    for (int64_t m = 0; m < hw; ++m) mx = std::fmax(mx, k[static_cast<size_t>(row * hw + m)]);
    double total = 0.0;
    for (int64_t m = 0; m < hw; ++m) total += std::exp(k[static_cast<size_t>(row * hw + m)] - mx);
    for (int64_t m = 0; m < hw; ++m) {
      out[static_cast<size_t>(row * hw + m)] = std::exp(k[static_cast<size_t>(row * hw + m)] - mx) / total;
    }
  }
  return out;
}

// Y computed from the contract; with `absolute` every factor is replaced by its absolute value (the magnitude).
std::vector<double> lambda_formula(const hk::LambdaParams& p, const std::vector<float>& q,
                                   const std::vector<double>& ks, const std::vector<float>& v,
                                   const std::vector<float>& pos, bool absolute) {
  const int64_t hw = p.height * p.width;
  const int64_t K = p.dim_k, U = p.dim_u, V = p.dim_v;
  auto f = [absolute](double value) { return absolute ? std::fabs(value) : value; };
  auto val = [&](int64_t n, int64_t vv, int64_t u, int64_t m) {
    return f(v[static_cast<size_t>(((n * V + vv) * U + u) * hw + m)]);
  };
  std::vector<double> y(static_cast<size_t>(p.batch * p.heads * V * hw), 0.0);
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t vv = 0; vv < V; ++vv) {
        double lc = 0.0;
        for (int64_t u = 0; u < U; ++u) {
          for (int64_t m = 0; m < hw; ++m) {
            lc += ks[static_cast<size_t>(((n * K + k) * U + u) * hw + m)] * val(n, vv, u, m);
          }
        }
        for (int64_t pp = 0; pp < hw; ++pp) {
          double lp = 0.0;
          if (p.local) {
            const int64_t py = pp / p.width, px = pp % p.width, half = p.r / 2;
            for (int64_t u = 0; u < U; ++u) {
              for (int64_t i = 0; i < p.r; ++i) {
                for (int64_t j = 0; j < p.r; ++j) {
                  const int64_t iy = py + i - half, ix = px + j - half;
                  if (iy < 0 || iy >= p.height || ix < 0 || ix >= p.width) continue;
                  lp += f(pos[static_cast<size_t>(((k * U + u) * p.r + i) * p.r + j)]) *
                        val(n, vv, u, iy * p.width + ix);
                }
              }
            }
          } else {
            for (int64_t m = 0; m < hw; ++m) {
              for (int64_t u = 0; u < U; ++u) {
                lp += f(pos[static_cast<size_t>(((pp * hw + m) * K + k) * U + u)]) * val(n, vv, u, m);
              }
            }
          }
          for (int64_t h = 0; h < p.heads; ++h) {
            y[static_cast<size_t>(((n * p.heads + h) * V + vv) * hw + pp)] +=
                f(q[static_cast<size_t>(((n * p.heads + h) * K + k) * hw + pp)]) * (lc + lp);
          }
        }
      }
    }
  }
  return y;
}

hk::LambdaParams lambda_params(int64_t n, int64_t heads, int64_t k, int64_t u, int64_t v, int64_t h, int64_t w,
                               int64_t r) {
  hk::LambdaParams p;
  p.batch = n;
  p.heads = heads;
  p.dim_k = k;
  p.dim_u = u;
  p.dim_v = v;
  p.height = h;
  p.width = w;
  p.local = r > 0;
  p.r = r;
  return p;
}

void check_lambda(const std::string& name, const hk::LambdaParams& p, std::mt19937& rng, cudaStream_t stream) {
  const int64_t hw = p.height * p.width;
  const auto q = random_vector(static_cast<size_t>(p.batch * p.heads * p.dim_k * hw), rng);
  const auto k = random_vector(static_cast<size_t>(p.batch * p.dim_k * p.dim_u * hw), rng, -4.0f, 4.0f);
  const auto v = random_vector(static_cast<size_t>(p.batch * p.dim_v * p.dim_u * hw), rng);
  const size_t pos_numel =
      static_cast<size_t>(p.local ? p.dim_k * p.dim_u * p.r * p.r : hw * hw * p.dim_k * p.dim_u);
  const auto pos = random_vector(pos_numel, rng);
  const size_t y_numel = static_cast<size_t>(p.batch * p.heads * p.dim_v * hw);
  const size_t ws_bytes = hc::LambdaCudaWorkspaceBytes(p);
  DeviceBuffer dq(q, stream), dk(k, stream), dv(v, stream), dpos(pos, stream), dy(poisoned_output(y_numel), stream);
  DeviceBuffer dws(ws_bytes / sizeof(float), stream);
  check_cuda(hc::LambdaCuda(p, dq.get(), dk.get(), dv.get(), dpos.get(), dy.get(), dws.get(), ws_bytes, stream),
             name.c_str());
  const std::vector<double> ks = softmax_keys(p, k);
  Reference ref{lambda_formula(p, q, ks, v, pos, false), lambda_formula(p, q, ks, v, pos, true)};
  report(name, download(dy, y_numel + kGuard, stream), ref);
}

void run_lambda(std::mt19937& rng, cudaStream_t stream) {
  check_lambda("lambda local r5 K16 (two key chunks)", lambda_params(2, 4, 16, 1, 4, 7, 6, 5), rng, stream);
  check_lambda("lambda local r3 dim_u2 K5", lambda_params(2, 2, 5, 2, 3, 5, 8, 3), rng, stream);
  check_lambda("lambda local r9 dim_u2 (taps span tiles)", lambda_params(1, 3, 9, 2, 2, 6, 7, 9), rng, stream);
  check_lambda("lambda local r1", lambda_params(1, 1, 3, 1, 2, 4, 4, 1), rng, stream);
  check_lambda("lambda global dim_u2", lambda_params(2, 2, 6, 2, 5, 4, 5, 0), rng, stream);
  check_lambda("lambda global K40 V10 (value chunks)", lambda_params(2, 3, 40, 1, 10, 3, 3, 0), rng, stream);
  check_lambda("lambda global K300 (key chunks)", lambda_params(1, 2, 300, 2, 2, 2, 2, 0), rng, stream);

  // dim_k = 0: Y is an empty sum, all zeros.
  const hk::LambdaParams no_keys = lambda_params(1, 2, 0, 1, 3, 2, 2, 3);
  const size_t y_numel = 2 * 3 * 4;
  DeviceBuffer dy(poisoned_output(y_numel), stream);
  check_cuda(hc::LambdaCuda(no_keys, nullptr, nullptr, nullptr, nullptr, dy.get(), nullptr, 0, stream), "dim_k 0");
  report("lambda dim_k=0 gives zeros", download(dy, y_numel + kGuard, stream),
         Reference{std::vector<double>(y_numel, 0.0), std::vector<double>(y_numel, 0.0)});

  const hk::LambdaParams small = lambda_params(1, 1, 2, 1, 2, 3, 3, 3);
  DeviceBuffer dummy(64, stream);
  expect(hc::LambdaCuda(small, dummy.get(), dummy.get(), dummy.get(), dummy.get(), dummy.get(), dummy.get(),
                        hc::LambdaCudaWorkspaceBytes(small) - 1, stream) == cudaErrorInvalidValue,
         "lambda short workspace rejected");
  expect(hc::LambdaCuda(lambda_params(0, 2, 4, 1, 3, 5, 5, 3), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                        0, stream) == cudaSuccess,
         "lambda empty batch");
  expect(hc::LambdaCudaWorkspaceBytes(lambda_params(1, 1, 2, 1, 2, 3, 3, 2)) == 0, "lambda even r invalid");
}

// ---------------------------------------------------------------------------------------------------------------
// float16: the same launchers on __half tensors. Inputs are rounded to float16 first (the reference sees the rounded
// values); outputs may differ by their own float16 rounding on top of the float32 tolerance.

constexpr double kHalfRel = 1.0 / 2048.0;

// Rounds host floats to float16 in place and returns their device copy (as __half).
class HalfBuffer {
 public:
  HalfBuffer(std::vector<float>& host, cudaStream_t stream) : n_(host.size()) {
    std::vector<__half> halves(n_);
    for (size_t i = 0; i < n_; ++i) {
      halves[i] = __float2half_rn(host[i]);
      host[i] = __half2float(halves[i]);
    }
    if (n_ > 0) {
      check_cuda(cudaMalloc(&ptr_, n_ * sizeof(__half)), "cudaMalloc");
      check_cuda(cudaMemcpyAsync(ptr_, halves.data(), n_ * sizeof(__half), cudaMemcpyHostToDevice, stream), "upload");
      check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }
  }
  HalfBuffer(const HalfBuffer&) = delete;
  HalfBuffer& operator=(const HalfBuffer&) = delete;
  ~HalfBuffer() { cudaFree(ptr_); }
  __half* get() const { return ptr_; }
  std::vector<float> download(cudaStream_t stream) const {
    std::vector<__half> halves(n_);
    check_cuda(cudaMemcpyAsync(halves.data(), ptr_, n_ * sizeof(__half), cudaMemcpyDeviceToHost, stream), "download");
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    std::vector<float> out(n_);
    for (size_t i = 0; i < n_; ++i) out[i] = __half2float(halves[i]);
    return out;
  }

 private:
  size_t n_;
  __half* ptr_ = nullptr;
};

void check_add2d_half(const std::string& name, const hk::Add2dParams& p, std::mt19937& rng, cudaStream_t stream) {
  const hk::Window2d& w = p.window;
  auto x = random_vector(static_cast<size_t>(w.batch * w.channels * w.height * w.width), rng);
  auto wt = random_vector(static_cast<size_t>(p.out_channels * (w.channels / w.groups) * w.kernel_h * w.kernel_w), rng);
  auto bias = random_vector(static_cast<size_t>(p.out_channels), rng);
  const size_t y_numel = static_cast<size_t>(w.batch * p.out_channels * w.out_h * w.out_w);
  auto y = poisoned_output(y_numel);
  HalfBuffer dx(x, stream), dw(wt, stream), db(bias, stream), dy(y, stream);
  check_cuda(hc::Add2dCudaHalf(p, dx.get(), dw.get(), p.has_bias ? db.get() : nullptr, dy.get(), stream),
             name.c_str());
  report(name, dy.download(stream), add2d_reference(p, x, wt, p.has_bias ? &bias : nullptr), kHalfRel);
}

void check_involution_half(const std::string& name, const hk::Window2d& w, std::mt19937& rng, cudaStream_t stream) {
  auto x = random_vector(static_cast<size_t>(w.batch * w.channels * w.height * w.width), rng);
  auto k = random_vector(static_cast<size_t>(w.batch * w.groups * w.kernel_h * w.kernel_w * w.out_h * w.out_w), rng);
  auto y = poisoned_output(static_cast<size_t>(w.batch * w.channels * w.out_h * w.out_w));
  HalfBuffer dx(x, stream), dk(k, stream), dy(y, stream);
  hk::Involution2dParams p;
  p.window = w;
  check_cuda(hc::Involution2dCudaHalf(p, dx.get(), dk.get(), dy.get(), stream), name.c_str());
  report(name, dy.download(stream), involution_reference(w, x, k), kHalfRel);
}

void check_lambda_half(const std::string& name, const hk::LambdaParams& p, std::mt19937& rng, cudaStream_t stream) {
  const int64_t hw = p.height * p.width;
  auto q = random_vector(static_cast<size_t>(p.batch * p.heads * p.dim_k * hw), rng);
  auto k = random_vector(static_cast<size_t>(p.batch * p.dim_k * p.dim_u * hw), rng, -4.0f, 4.0f);
  auto v = random_vector(static_cast<size_t>(p.batch * p.dim_v * p.dim_u * hw), rng);
  auto pos = random_vector(static_cast<size_t>(p.local ? p.dim_k * p.dim_u * p.r * p.r : hw * hw * p.dim_k * p.dim_u),
                           rng);
  auto y = poisoned_output(static_cast<size_t>(p.batch * p.heads * p.dim_v * hw));
  const size_t ws_bytes = hc::LambdaCudaWorkspaceBytes(p, true);
  HalfBuffer dq(q, stream), dk(k, stream), dv(v, stream), dpos(pos, stream), dy(y, stream);
  DeviceBuffer dws(ws_bytes / sizeof(float), stream);
  expect(hc::LambdaCudaHalf(p, dq.get(), dk.get(), dv.get(), dpos.get(), dy.get(), dws.get(),
                            hc::LambdaCudaWorkspaceBytes(p), stream) == cudaErrorInvalidValue,
         name + " float-sized workspace rejected");
  check_cuda(hc::LambdaCudaHalf(p, dq.get(), dk.get(), dv.get(), dpos.get(), dy.get(), dws.get(), ws_bytes, stream),
             name.c_str());
  const std::vector<double> ks = softmax_keys(p, k);
  Reference ref{lambda_formula(p, q, ks, v, pos, false), lambda_formula(p, q, ks, v, pos, true)};
  report(name, dy.download(stream), ref, kHalfRel);
}

void run_half(std::mt19937& rng, cudaStream_t stream) {
  hk::Add2dParams p;
  p.window = make_window(2, 8, 9, 11, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 2);
  p.out_channels = 6;
  p.has_bias = true;
  check_add2d_half("half add2d 3x3 pad1 groups2 bias", p, rng, stream);
  p.normalize_slices = true;
  p.eps = 1e-5f;
  check_add2d_half("half add2d normalize_slices", p, rng, stream);
  p.normalize_slices = false;
  p.window = make_window(2, 6, 7, 9, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1, 1);
  p.out_channels = 40;
  check_add2d_half("half add2d gemm 32x32 tiles 40 channels", p, rng, stream);
  check_involution_half("half involution 3x5 stride2 dil2 groups3",
                        make_window(2, 12, 11, 13, 3, 5, 2, 2, {1, 0, 2, 3}, 2, 2, 3), rng, stream);
  check_lambda_half("half lambda local r5 K16 (two key chunks)", lambda_params(2, 4, 16, 1, 4, 7, 6, 5), rng, stream);
  check_lambda_half("half lambda global K300 (key chunks)", lambda_params(1, 2, 300, 2, 2, 2, 2, 0), rng, stream);
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  std::mt19937 rng(20240611u);
  run_add2d(rng, stream);
  run_involution(rng, stream);
  run_lambda(rng, stream);
  run_half(rng, stream);
  check_cuda(cudaStreamSynchronize(stream), "final synchronize");
  check_cuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
  std::printf("%s: %d failure(s)\n", g_failures == 0 ? "ALL PASS" : "FAILED", g_failures);
  return g_failures == 0 ? 0 : 1;
}
