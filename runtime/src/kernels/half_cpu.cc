// float16 entry points of the CPU kernels (cpu.h): convert to float32 scratch, run the float32 kernel, convert back.
// Per-image tensors (X, K, Q, keys, values, Y) go through in chunks of whole images sized to kChunkFloats; weights
// are converted once per call.
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/half.h"

namespace holocron::kernels {
namespace {

constexpr int64_t kChunkFloats = int64_t{1} << 20;  // 4 MiB of float scratch per chunk (more only for one big image)
constexpr std::size_t kConvertBlock = std::size_t{1} << 16;

// Float scratch of n elements; never empty, so its data() is a valid pointer even for empty tensors.
std::vector<float> FloatScratch(int64_t n) {
  return std::vector<float>(static_cast<std::size_t>(std::max<int64_t>(n, 1)));
}

void ToFloat(const uint16_t* src, float* dst, int64_t n, const ParallelFor& parallel) {
  const std::size_t count = static_cast<std::size_t>(n);
  parallel((count + kConvertBlock - 1) / kConvertBlock, [&](std::size_t block) {
    const std::size_t end = std::min(count, (block + 1) * kConvertBlock);
    for (std::size_t i = block * kConvertBlock; i < end; ++i) dst[i] = HalfToFloat(src[i]);
  });
}

void ToHalf(const float* src, uint16_t* dst, int64_t n, const ParallelFor& parallel) {
  const std::size_t count = static_cast<std::size_t>(n);
  parallel((count + kConvertBlock - 1) / kConvertBlock, [&](std::size_t block) {
    const std::size_t end = std::min(count, (block + 1) * kConvertBlock);
    for (std::size_t i = block * kConvertBlock; i < end; ++i) dst[i] = FloatToHalf(src[i]);
  });
}

std::vector<float> ConvertAll(const uint16_t* src, int64_t n, const ParallelFor& parallel) {
  std::vector<float> out = FloatScratch(n);
  if (src != nullptr) ToFloat(src, out.data(), n, parallel);
  return out;
}

// One per-image tensor: its elements per image, its half data, and its float scratch for a chunk.
struct Stream {
  int64_t per_image;
  const uint16_t* in;  // null for the output
  uint16_t* out;       // null for inputs
  std::vector<float> scratch{};
};

// Runs compute(images, first image) over the batch in chunks; the streams' scratch holds the chunk's inputs in float
// before the call, and the output's float results after it.
template <std::size_t N, typename Compute>
void InChunks(int64_t batch, std::array<Stream, N>& streams, const ParallelFor& parallel, const Compute& compute) {
  int64_t per_image = 0;
  for (const Stream& s : streams) per_image += s.per_image;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(batch, kChunkFloats / std::max<int64_t>(per_image, 1)));
  for (Stream& s : streams) s.scratch = FloatScratch(chunk * s.per_image);
  for (int64_t first = 0; first < batch; first += chunk) {
    const int64_t images = std::min(chunk, batch - first);
    for (Stream& s : streams) {
      if (s.in != nullptr) ToFloat(s.in + first * s.per_image, s.scratch.data(), images * s.per_image, parallel);
    }
    compute(images);
    for (Stream& s : streams) {
      if (s.out != nullptr) ToHalf(s.scratch.data(), s.out + first * s.per_image, images * s.per_image, parallel);
    }
  }
}

}  // namespace

void Add2dCpuHalf(const Add2dParams& p, const uint16_t* x, const uint16_t* w, const uint16_t* bias, uint16_t* y,
                  const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const int64_t slice = g.channels / std::max<int64_t>(g.groups, 1) * g.kernel_h * g.kernel_w;
  const std::vector<float> w_float = ConvertAll(w, p.out_channels * slice, parallel);
  const std::vector<float> b_float = ConvertAll(p.has_bias ? bias : nullptr, p.out_channels, parallel);
  std::array<Stream, 2> streams{Stream{g.channels * g.height * g.width, x, nullptr},
                                Stream{p.out_channels * g.out_h * g.out_w, nullptr, y}};
  InChunks(g.batch, streams, parallel, [&](int64_t images) {
    Add2dParams chunk = p;
    chunk.window.batch = images;
    Add2dCpu(chunk, streams[0].scratch.data(), w_float.data(), p.has_bias ? b_float.data() : nullptr,
             streams[1].scratch.data(), parallel);
  });
}

void Involution2dCpuHalf(const Involution2dParams& p, const uint16_t* x, const uint16_t* kernel, uint16_t* y,
                         const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const int64_t pixels = g.out_h * g.out_w;
  std::array<Stream, 3> streams{Stream{g.channels * g.height * g.width, x, nullptr},
                                Stream{g.groups * g.kernel_h * g.kernel_w * pixels, kernel, nullptr},
                                Stream{g.channels * pixels, nullptr, y}};
  InChunks(g.batch, streams, parallel, [&](int64_t images) {
    Involution2dParams chunk = p;
    chunk.window.batch = images;
    Involution2dCpu(chunk, streams[0].scratch.data(), streams[1].scratch.data(), streams[2].scratch.data(), parallel);
  });
}

void LambdaCpuHalf(const LambdaParams& p, const uint16_t* q, const uint16_t* keys, const uint16_t* values,
                   const uint16_t* position, uint16_t* y, const ParallelFor& parallel) {
  const int64_t pixels = p.height * p.width;
  const int64_t position_size = p.local ? p.dim_k * p.dim_u * p.r * p.r : pixels * pixels * p.dim_k * p.dim_u;
  const std::vector<float> position_float = ConvertAll(position, position_size, parallel);
  std::array<Stream, 4> streams{Stream{p.heads * p.dim_k * pixels, q, nullptr},
                                Stream{p.dim_k * p.dim_u * pixels, keys, nullptr},
                                Stream{p.dim_v * p.dim_u * pixels, values, nullptr},
                                Stream{p.heads * p.dim_v * pixels, nullptr, y}};
  InChunks(p.batch, streams, parallel, [&](int64_t images) {
    LambdaParams chunk = p;
    chunk.batch = images;
    LambdaCpu(chunk, streams[0].scratch.data(), streams[1].scratch.data(), streams[2].scratch.data(),
              position_float.data(), streams[3].scratch.data(), parallel);
  });
}

}  // namespace holocron::kernels
