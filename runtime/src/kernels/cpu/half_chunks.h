// float16 entry points of the CPU kernels share this: convert to float32 scratch, run the float32 kernel, convert
// back. Per-image tensors (X, K, Q, keys, values, Y) go through in chunks of whole images sized to kChunkFloats;
// weights are converted once per call.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/half.h"
#include "kernels/cpu/parallel.h"

namespace holocron::kernels::half_chunks {


// 4 MiB of float scratch per chunk (more only for one big image).
inline constexpr int64_t kChunkFloats = int64_t{1} << 20;
inline constexpr std::size_t kConvertBlock = std::size_t{1} << 16;

// Float scratch of n elements; never empty, so its data() is a valid pointer even for empty tensors.
inline std::vector<float> FloatScratch(int64_t n) {
  return std::vector<float>(static_cast<std::size_t>(std::max<int64_t>(n, 1)));
}

inline void ToFloat(const uint16_t* src, float* dst, int64_t n, const ParallelFor& parallel) {
  const std::size_t count = static_cast<std::size_t>(n);
  parallel((count + kConvertBlock - 1) / kConvertBlock, [&](std::size_t block) {
    const std::size_t end = std::min(count, (block + 1) * kConvertBlock);
    for (std::size_t i = block * kConvertBlock; i < end; ++i) dst[i] = HalfToFloat(src[i]);
  });
}

inline void ToHalf(const float* src, uint16_t* dst, int64_t n, const ParallelFor& parallel) {
  const std::size_t count = static_cast<std::size_t>(n);
  parallel((count + kConvertBlock - 1) / kConvertBlock, [&](std::size_t block) {
    const std::size_t end = std::min(count, (block + 1) * kConvertBlock);
    for (std::size_t i = block * kConvertBlock; i < end; ++i) dst[i] = FloatToHalf(src[i]);
  });
}

inline std::vector<float> ConvertAll(const uint16_t* src, int64_t n, const ParallelFor& parallel) {
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

}  // namespace holocron::kernels::half_chunks
