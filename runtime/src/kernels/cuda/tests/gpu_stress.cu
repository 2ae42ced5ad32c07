// GPU-only checks of the holocron CUDA launchers that the CPU emulation cannot make (run by gpu_check.sh):
//   gpu_stress big     tensors of several GiB (more than 2^30 elements: the 64-bit index path on real data)
//   gpu_stress grid    grids beyond 65,535 blocks in x and more channel tiles than gridDim.y allows
//   gpu_stress graph   the three ops captured in one CUDA graph, replayed twice, equal to direct launches
// Inputs are a hash of the element index, computed on the device (no multi-GiB uploads) and again on the host for
// the reference, which is float64 at sampled outputs (big) or every output (grid). Prints one PASS/FAIL line per
// case; exit 0 when all pass, 1 on a failure, 2 without a usable GPU or with too little memory.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../launch.h"

namespace hk = holocron::kernels;
namespace hc = holocron::kernels::cuda;

namespace {

int g_failures = 0;

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(err));
    std::exit(err == cudaErrorMemoryAllocation ? 2 : 1);
  }
}

// A value in [-1, 1) from an element index and a seed, the same on host and device.
__host__ __device__ inline float hashed(uint64_t i, uint32_t seed) {
  uint64_t z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) / static_cast<float>(1u << 23) - 1.0f;
}

__global__ void fill_kernel(float* out, uint64_t n, uint32_t seed) {
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    out[i] = hashed(i, seed);
  }
}

float* device_hashed(uint64_t n, uint32_t seed) {
  float* ptr = nullptr;
  check_cuda(cudaMalloc(&ptr, n * sizeof(float)), "cudaMalloc");
  fill_kernel<<<4096, 256>>>(ptr, n, seed);
  check_cuda(cudaGetLastError(), "fill");
  return ptr;
}

void result(bool ok, const std::string& name, const std::string& detail) {
  if (!ok) ++g_failures;
  std::printf("%s %s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
  std::fflush(stdout);
}

hk::Window2d window(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t pad, int64_t groups) {
  hk::Window2d win;
  win.batch = n;
  win.channels = c;
  win.height = h;
  win.width = w;
  win.kernel_h = win.kernel_w = k;
  win.pad_top = win.pad_left = win.pad_bottom = win.pad_right = pad;
  win.groups = groups;
  win.out_h = hk::ConvOutputSize(h, k, 1, pad, pad, 1);
  win.out_w = hk::ConvOutputSize(w, k, 1, pad, pad, 1);
  return win;
}

// Add2d output (n, o, y, x) in float64 from the hashed inputs (seeds 1: X, 2: W, 3: bias), stride 1, no dilation.
double add2d_at(const hk::Add2dParams& p, int64_t n, int64_t o, int64_t y, int64_t x, double* magnitude) {
  const hk::Window2d& w = p.window;
  const int64_t cg = w.channels / w.groups, og = p.out_channels / w.groups, g = o / og;
  double sum = 0.0;
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t i = 0; i < w.kernel_h; ++i) {
      for (int64_t j = 0; j < w.kernel_w; ++j) {
        const int64_t iy = y - w.pad_top + i, ix = x - w.pad_left + j;
        const double s = (iy < 0 || iy >= w.height || ix < 0 || ix >= w.width)
                             ? 0.0
                             : hashed(static_cast<uint64_t>(((n * w.channels + g * cg + c) * w.height + iy) * w.width + ix), 1);
        const double wt = hashed(static_cast<uint64_t>(((o * cg + c) * w.kernel_h + i) * w.kernel_w + j), 2);
        sum += std::fabs(s - wt);
      }
    }
  }
  const double b = p.has_bias ? hashed(static_cast<uint64_t>(o), 3) : 0.0;
  *magnitude = std::fabs(b) + sum;
  return b - sum;
}

// Compares Y (downloaded) with add2d_at at every `step`-th output and at the last 4096 outputs.
void compare_add2d(const std::string& name, const hk::Add2dParams& p, const float* d_y, int64_t step) {
  const hk::Window2d& w = p.window;
  const int64_t numel = w.batch * p.out_channels * w.out_h * w.out_w;
  std::vector<float> y(static_cast<size_t>(numel));
  check_cuda(cudaMemcpy(y.data(), d_y, y.size() * sizeof(float), cudaMemcpyDeviceToHost), "download");
  int64_t checked = 0, bad = 0;
  double worst = 0.0;
  auto check_at = [&](int64_t idx) {
    const int64_t xo = idx % w.out_w, yo = (idx / w.out_w) % w.out_h;
    const int64_t o = (idx / (w.out_w * w.out_h)) % p.out_channels, n = idx / (w.out_w * w.out_h * p.out_channels);
    double magnitude = 0.0;
    const double ref = add2d_at(p, n, o, yo, xo, &magnitude);
    const double err = std::fabs(y[static_cast<size_t>(idx)] - ref);
    if (!(err <= 1e-6 + 1e-5 * magnitude)) ++bad;
    worst = std::fmax(worst, err / (1e-6 + magnitude));
    ++checked;
  };
  for (int64_t idx = 0; idx < numel; idx += step) check_at(idx);
  for (int64_t idx = numel > 4096 ? numel - 4096 : 0; idx < numel; ++idx) check_at(idx);
  result(bad == 0, name,
         "outputs=" + std::to_string(numel) + " checked=" + std::to_string(checked) + " bad=" + std::to_string(bad) +
             " max_err/magnitude=" + std::to_string(worst));
}

void run_add2d(const std::string& name, const hk::Add2dParams& p, int64_t step) {
  const hk::Window2d& w = p.window;
  const uint64_t x_numel = static_cast<uint64_t>(w.batch * w.channels * w.height * w.width);
  const uint64_t w_numel = static_cast<uint64_t>(p.out_channels * (w.channels / w.groups) * w.kernel_h * w.kernel_w);
  const uint64_t y_numel = static_cast<uint64_t>(w.batch * p.out_channels * w.out_h * w.out_w);
  float* x = device_hashed(x_numel, 1);
  float* wt = device_hashed(w_numel, 2);
  float* bias = device_hashed(static_cast<uint64_t>(p.out_channels), 3);
  float* y = nullptr;
  check_cuda(cudaMalloc(&y, y_numel * sizeof(float)), "cudaMalloc");
  check_cuda(hc::Add2dCuda(p, x, wt, p.has_bias ? bias : nullptr, y, nullptr), name.c_str());
  check_cuda(cudaDeviceSynchronize(), name.c_str());
  compare_add2d(name, p, y, step);
  cudaFree(x);
  cudaFree(wt);
  cudaFree(bias);
  cudaFree(y);
}

void run_involution_big() {
  // X (1, 4, 16384, 16384) = 2^30 elements (4 GiB), K (1, 9, 16384, 16384): 64-bit indexing on real data.
  hk::Involution2dParams p;
  p.window = window(1, 4, 16384, 16384, 3, 1, 1);
  const hk::Window2d& w = p.window;
  const uint64_t plane = static_cast<uint64_t>(w.height * w.width);
  float* x = device_hashed(4 * plane, 1);
  float* k = device_hashed(9 * plane, 2);
  float* y = nullptr;
  check_cuda(cudaMalloc(&y, 4 * plane * sizeof(float)), "cudaMalloc");
  check_cuda(hc::Involution2dCuda(p, x, k, y, nullptr), "involution big");
  check_cuda(cudaDeviceSynchronize(), "involution big");
  std::vector<float> host(4 * plane);
  check_cuda(cudaMemcpy(host.data(), y, host.size() * sizeof(float), cudaMemcpyDeviceToHost), "download");
  int64_t checked = 0, bad = 0;
  auto check_at = [&](uint64_t idx) {
    const int64_t xo = static_cast<int64_t>(idx % w.width), yo = static_cast<int64_t>((idx / w.width) % w.height);
    const int64_t c = static_cast<int64_t>(idx / plane);
    double sum = 0.0, magnitude = 0.0;
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t iy = yo - 1 + i, ix = xo - 1 + j;
        if (iy < 0 || iy >= w.height || ix < 0 || ix >= w.width) continue;
        const double kv = hashed(static_cast<uint64_t>((i * 3 + j) * w.height + yo) * w.width + xo, 2);
        const double xv = hashed((static_cast<uint64_t>(c) * w.height + iy) * w.width + ix, 1);
        sum += kv * xv;
        magnitude += std::fabs(kv * xv);
      }
    }
    if (!(std::fabs(host[idx] - sum) <= 1e-6 + 1e-5 * magnitude)) ++bad;
    ++checked;
  };
  for (uint64_t idx = 0; idx < host.size(); idx += 9973) check_at(idx);
  for (uint64_t idx = host.size() - 4096; idx < host.size(); ++idx) check_at(idx);
  result(bad == 0, "involution2d X 4 GiB (2^30 elements, 64-bit indexing)",
         "checked=" + std::to_string(checked) + " bad=" + std::to_string(bad));
  cudaFree(x);
  cudaFree(k);
  cudaFree(y);
}

int big() {
  size_t free_bytes = 0, total = 0;
  check_cuda(cudaMemGetInfo(&free_bytes, &total), "cudaMemGetInfo");
  if (free_bytes < (size_t{20} << 30)) {
    std::printf("SKIPPED big tensors: %zu MiB free, 20 GiB needed\n", free_bytes >> 20);
    return 2;
  }
  // X (1, 6, 16384, 16384): 1.5 * 2^30 elements, 6 GiB; Y 1 GiB.
  hk::Add2dParams p;
  p.window = window(1, 6, 16384, 16384, 1, 0, 1);
  p.out_channels = 1;
  p.has_bias = true;
  run_add2d("add2d X 6 GiB (1.5 * 2^30 elements, 64-bit indexing)", p, 7919);
  run_involution_big();
  return g_failures == 0 ? 0 : 1;
}

int grid() {
  hk::Add2dParams p;
  // 4096 x 4096 pixels: 131,072 blocks of 128 in x.
  p.window = window(1, 2, 4096, 4096, 3, 1, 1);
  p.out_channels = 3;
  p.has_bias = true;
  run_add2d("add2d 131072 blocks in x", p, 1);
  // The implicit GEMM (64 x 64 tiles): 2048 x 2048 pixels are 65,536 pixel tiles in x; every 7th output checked.
  p.window = window(1, 2, 2048, 2048, 3, 1, 1);
  p.out_channels = 32;
  run_add2d("add2d gemm 65536 pixel tiles in x", p, 7);
  // 70,000 depthwise groups: 70,000 channel tiles, more than gridDim.y (65,535) holds.
  p.window = window(1, 70000, 4, 4, 3, 1, 70000);
  p.out_channels = 70000;
  run_add2d("add2d 70000 channel tiles (grid y capped at 65535)", p, 1);
  return g_failures == 0 ? 0 : 1;
}

int graph() {
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  hk::Add2dParams a;
  a.window = window(2, 16, 20, 20, 3, 1, 1);
  a.out_channels = 24;
  a.has_bias = true;
  a.normalize_slices = true;
  hk::Involution2dParams inv;
  inv.window = window(2, 16, 20, 20, 3, 1, 4);
  hk::LambdaParams lam;
  lam.batch = 2;
  lam.heads = 4;
  lam.dim_k = 16;
  lam.dim_u = 1;
  lam.dim_v = 4;
  lam.height = lam.width = 12;
  lam.local = true;
  lam.r = 5;
  const int64_t plane = 400, lplane = 144;
  float* ax = device_hashed(2 * 16 * plane, 1);
  float* aw = device_hashed(24 * 16 * 9, 2);
  float* ab = device_hashed(24, 3);
  float* ik = device_hashed(2 * 4 * 9 * plane, 4);
  float* lq = device_hashed(2 * 4 * 16 * lplane, 5);
  float* lk = device_hashed(2 * 16 * lplane, 6);
  float* lv = device_hashed(2 * 4 * lplane, 7);
  float* lr = device_hashed(16 * 25, 8);
  const size_t ws_bytes = hc::LambdaCudaWorkspaceBytes(lam);
  void* ws = nullptr;
  check_cuda(cudaMalloc(&ws, ws_bytes), "cudaMalloc");
  const size_t sizes[3] = {2 * 24 * plane, 2 * 16 * plane, 2 * 4 * 4 * lplane};
  float* direct[3];
  float* captured[3];
  for (int i = 0; i < 3; ++i) {
    check_cuda(cudaMalloc(&direct[i], sizes[i] * sizeof(float)), "cudaMalloc");
    check_cuda(cudaMalloc(&captured[i], sizes[i] * sizeof(float)), "cudaMalloc");
    check_cuda(cudaMemset(captured[i], 0xff, sizes[i] * sizeof(float)), "cudaMemset");  // NaNs until written
  }
  auto enqueue = [&](float* const* out) {
    check_cuda(hc::Add2dCuda(a, ax, aw, ab, out[0], stream), "add2d");
    check_cuda(hc::Involution2dCuda(inv, ax, ik, out[1], stream), "involution2d");
    check_cuda(hc::LambdaCuda(lam, lq, lk, lv, lr, out[2], ws, ws_bytes, stream), "lambda");
  };
  check_cuda(cudaDeviceSynchronize(), "fill");
  enqueue(direct);
  check_cuda(cudaStreamSynchronize(stream), "direct");
  cudaGraph_t graph = nullptr;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  enqueue(captured);
  check_cuda(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  bool ok = true;
  for (int replay = 0; replay < 2; ++replay) {
    check_cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    check_cuda(cudaStreamSynchronize(stream), "graph replay");
    for (int i = 0; i < 3; ++i) {
      std::vector<float> d(sizes[i]), c(sizes[i]);
      check_cuda(cudaMemcpy(d.data(), direct[i], sizes[i] * sizeof(float), cudaMemcpyDeviceToHost), "download");
      check_cuda(cudaMemcpy(c.data(), captured[i], sizes[i] * sizeof(float), cudaMemcpyDeviceToHost), "download");
      ok = ok && std::memcmp(d.data(), c.data(), sizes[i] * sizeof(float)) == 0;
    }
  }
  size_t nodes = 0;
  check_cuda(cudaGraphGetNodes(graph, nullptr, &nodes), "cudaGraphGetNodes");
  result(ok, "cuda graph: add2d + involution2d + lambda captured, replayed twice, bitwise equal to direct launches",
         "graph_nodes=" + std::to_string(nodes));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return g_failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "big") return big();
  if (mode == "grid") return grid();
  if (mode == "graph") return graph();
  std::fprintf(stderr, "usage: %s big|grid|graph\n", argv[0]);
  return 2;
}
