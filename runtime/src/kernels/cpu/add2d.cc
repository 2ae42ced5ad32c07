// Add2d (AdderNet, https://arxiv.org/abs/1912.13200) on the CPU:
//   Y[n, o, y, x] = B[o] - sum_{c, i, j} |S[c, i, j] - W[o, c, i, j]|,
// S the zero-padded input slice under the window of output pixel (y, x), optionally normalized first.
//
// A task owns (image n, group g, a tile of consecutive output pixels, a chunk of g's output channels). It packs the
// tile's slices into a panel P[l][pixel] (l = (c, i, j) in C order, the zero padding written out, pixels contiguous,
// normalized per pixel when asked; a contiguous copy per output row at stride 1, a deinterleave at stride 2), then
// for every micro-tile of MR output channels x NR pixels accumulates over l in registers, NR pixels across the vector
// lanes, and writes B[o] - sum. At stride 1 along the rows, where a band of input rows fits in L1, a task owns a
// band of output rows instead and reads the slices in place from a padded copy of the input rows (the band path,
// above Add2dCpu), with the same micro-tiles and the same results.
//
// The distances go through the identity |s - w| = s + w - 2 min(s, w): over a row block, sum_l |P[l] - W[o, l]| =
// sum_l P[l] + sum_l W[o, l] - 2 sum_l min(P[l], W[o, l]), so the inner loop is one min and one accumulation per
// tap and filter instead of a subtraction, a mask and an addition, and the accumulation is a multiply-add by 1
// (exact), which AMD Zen runs on its multiply-add units while the mins take the adders: on Zen 4 the pair runs at
// the rate of Conv's fused multiply-adds (benchmarks/floor.cc). The filter sums per block are taken once per call
// (in double), the column sums of P once per packed block. The error is then float32 rounding of the summed
// magnitudes sum_l (|P[l]| + |W[o, l]|), not of the distance (the contract's accuracy clause); where a micro-tile's
// result is not finite (an input that is inf or NaN, or sums that overflow) it is recomputed with the exact
// |P[l] - W[o, l]| loop before anything is stored, so non-finite inputs give what the formula gives.
//
// Scratch memory is the panel, bounded by kPanelBudgetFloats (128 KiB), plus 5 KiB of slice statistics and column sums
// per task whatever the filter size (a thread runs one task at a time), and the filter sums per call (on the band path:
// the band, under 32 KiB, an output row of column sums, and the filter sums and tap offsets per call). A tile of whole
// micro-tiles is packed at once when its slices fit; a slice longer than the budget allows for one micro-tile of pixels
// is cut into row blocks [l0, l0 + rows) packed one after the other, each block's distances added to the running sums
// parked in Y. normalize_slices then needs the statistics of the whole slice first: two passes over the blocks (sum,
// then the squared deviations, in l order as for one block) before the distance pass normalizes each block.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/launch.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/half_chunks.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

namespace holocron::kernels {
namespace {

using simd::Vec;

constexpr int64_t kPanelBudgetFloats = 32 * 1024;  // 128 KiB: the panel stays in L2
constexpr int64_t kMaxBlocksPerTile = 8;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// floor(a / b) for b > 0 and any sign of a.
int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// What one task computes over one row block of its panel.
struct Add2dTask {
  const float* panel;  // rows x ld
  int64_t ld;          // panel row length: pixels of the tile rounded up to micro-tiles
  int64_t pixels;      // valid pixels of the tile
  int64_t rows;        // slice elements in the panel: L = C_in / group * kH * kW, or a block of them
  int64_t w_stride;    // L: floats between the filters of consecutive output channels
  bool first;          // the block starts the slice: the sums start at 0, else they are read back from Y
  bool last;           // the block ends the slice: Y gets B - sum, else the running sum
  const float* w;      // filters of the first output channel of the chunk, from the block's first element
  const float* bias;   // bias of that channel, or null
  int64_t channels;    // output channels in the chunk
  float* y;            // Y[n, first channel, first pixel]
  int64_t y_stride;    // H_out * W_out
  const float* w_sums;  // sum of each chunk channel's filter over the block
  float* column_sums;   // ld floats: the task fills them with the panel's column sums
  const int64_t* offsets;  // band path: where element l of pixel 0's slice lies from `panel`, else null
};

// Where slice element l of the first pixel lies from t.panel: row l of the panel, or, on the band path, the tap's
// place in the padded input band (the pixels of one output row follow each other there as in a panel row).
template <bool kBand>
HOLOCRON_INLINE int64_t Row(const Add2dTask& t, int64_t l) {
  if constexpr (kBand) {
    return t.offsets[l];
  } else {
    return l * t.ld;
  }
}

// Micro-tile: MR output channels x NV vectors of W pixels, the exact loop: the running sums of Y (earlier blocks)
// plus |P[l] - W[o, l]| over the block's rows.
template <int W, int MR, int NV, bool kBand>
HOLOCRON_INLINE void ExactMicroTile(const Add2dTask& t, int64_t o, int64_t pixel) {
  const int64_t valid = std::min<int64_t>(W * NV, t.pixels - pixel);
  Vec<W> acc[MR][NV];
  for (int m = 0; m < MR; ++m) {
    const float* sums = t.y + (o + m) * t.y_stride + pixel;
    for (int v = 0; v < NV; ++v) {
      const int64_t lanes = valid - v * W;
      if (t.first || lanes <= 0) {
        acc[m][v] = simd::Zero<W>();
      } else {
        acc[m][v] = lanes >= W ? simd::Load<W>(sums + v * W) : simd::LoadPartial<W>(sums + v * W, lanes);
      }
    }
  }
  const float* column = t.panel + pixel;
  const float* w = t.w + o * t.w_stride;
  for (int64_t l = 0; l < t.rows; ++l) {
    Vec<W> x[NV];
    for (int v = 0; v < NV; ++v) x[v] = simd::Load<W>(column + Row<kBand>(t, l) + v * W);
    for (int m = 0; m < MR; ++m) {
      const Vec<W> wv = simd::Broadcast<W>(w[m * t.w_stride + l]);
      for (int v = 0; v < NV; ++v) acc[m][v] += simd::Abs<W>(x[v] - wv);
    }
  }
  for (int m = 0; m < MR; ++m) {
    const Vec<W> b = simd::Broadcast<W>(t.bias != nullptr ? t.bias[o + m] : 0.0f);
    float* out = t.y + (o + m) * t.y_stride + pixel;
    for (int v = 0; v < NV; ++v) {
      const Vec<W> result = t.last ? b - acc[m][v] : acc[m][v];
      const int64_t lanes = valid - v * W;
      if (lanes >= W) {
        simd::Store<W>(out + v * W, result);
      } else if (lanes > 0) {
        simd::StorePartial<W>(out + v * W, result, lanes);
      }
    }
  }
}

// The same micro-tile through the min identity (see the top of the file); falls back to the exact loop when a
// result is not finite, before anything is written.
template <int W, int MR, int NV, bool kBand>
HOLOCRON_INLINE void AdderMicroTile(const Add2dTask& t, int64_t o, int64_t pixel) {
  const int64_t valid = std::min<int64_t>(W * NV, t.pixels - pixel);
  Vec<W> acc[MR][NV];
  for (int m = 0; m < MR; ++m) {
    for (int v = 0; v < NV; ++v) acc[m][v] = simd::Zero<W>();
  }
  const float* column = t.panel + pixel;
  const float* w = t.w + o * t.w_stride;
  // acc += min(x, w) as a multiply-add by 1 (exact): the mins take the adders, the sums the multiply-add units.
  const Vec<W> one = simd::Broadcast<W>(1.0f);
  for (int64_t l = 0; l < t.rows; ++l) {
    Vec<W> x[NV];
    for (int v = 0; v < NV; ++v) x[v] = simd::Load<W>(column + Row<kBand>(t, l) + v * W);
    for (int m = 0; m < MR; ++m) {
      const Vec<W> wv = simd::Broadcast<W>(w[m * t.w_stride + l]);
      for (int v = 0; v < NV; ++v) acc[m][v] = simd::AccumulateOnFma<W>(acc[m][v], simd::Min<W>(x[v], wv), one);
    }
  }
  // Column sums past the valid pixels are sums of zero padding: finite, and never stored.
  Vec<W> finite = simd::Zero<W>();  // stays 0 in every lane while all results are finite (inf - inf, NaN: NaN)
  Vec<W> distance[MR][NV];
  for (int m = 0; m < MR; ++m) {
    const Vec<W> w_sum = simd::Broadcast<W>(t.w_sums[o + m]);
    for (int v = 0; v < NV; ++v) {
      const Vec<W> x_sum = simd::Load<W>(t.column_sums + pixel + v * W);
      distance[m][v] = (x_sum + w_sum) - (acc[m][v] + acc[m][v]);
      finite += distance[m][v] - distance[m][v];
    }
  }
  if (!simd::AllZero<W>(finite)) {
    ExactMicroTile<W, MR, NV, kBand>(t, o, pixel);
    return;
  }
  for (int m = 0; m < MR; ++m) {
    const Vec<W> b = simd::Broadcast<W>(t.bias != nullptr ? t.bias[o + m] : 0.0f);
    float* out = t.y + (o + m) * t.y_stride + pixel;
    for (int v = 0; v < NV; ++v) {
      const int64_t lanes = valid - v * W;
      if (lanes <= 0) continue;
      Vec<W> running = distance[m][v];
      if (!t.first) {
        running += lanes >= W ? simd::Load<W>(out + v * W) : simd::LoadPartial<W>(out + v * W, lanes);
      }
      const Vec<W> result = t.last ? b - running : running;
      if (lanes >= W) {
        simd::Store<W>(out + v * W, result);
      } else {
        simd::StorePartial<W>(out + v * W, result, lanes);
      }
    }
  }
}

// The last (channels % MR) channels, with a narrower micro-tile.
template <int W, int MR, int NV, bool kBand>
HOLOCRON_INLINE void AdderRemainder(const Add2dTask& t, int64_t o, int64_t pixel, int64_t remaining) {
  if constexpr (MR > 0) {
    if (remaining == MR) {
      AdderMicroTile<W, MR, NV, kBand>(t, o, pixel);
    } else {
      AdderRemainder<W, MR - 1, NV, kBand>(t, o, pixel, remaining);
    }
  }
}

// The panel's column sums, each column summed over the rows in l order: blocks of NB vectors of columns walk down
// the rows together, NB independent sums (one sum per vector stalled on the adder's latency, and walking a column
// strides across the panel's cache lines).
template <int W, int NB, bool kBand>
HOLOCRON_INLINE void ColumnSumBlock(const Add2dTask& t, int64_t k) {
  Vec<W> sums[NB];
  for (int b = 0; b < NB; ++b) sums[b] = simd::Zero<W>();
  for (int64_t l = 0; l < t.rows; ++l) {
    const float* row = t.panel + Row<kBand>(t, l) + k;
    for (int b = 0; b < NB; ++b) sums[b] += simd::Load<W>(row + b * W);
  }
  for (int b = 0; b < NB; ++b) simd::Store<W>(t.column_sums + k + b * W, sums[b]);
}

template <int W, int NV, bool kBand>
HOLOCRON_INLINE void ColumnSums(const Add2dTask& t) {
  constexpr int kBlock = 4 * NV;  // ld is a multiple of NV vectors
  int64_t k = 0;
  for (; k + kBlock * W <= t.ld; k += kBlock * W) ColumnSumBlock<W, kBlock, kBand>(t, k);
  for (; k < t.ld; k += NV * W) ColumnSumBlock<W, NV, kBand>(t, k);
}

template <int W, int MR, int NV, bool kBand>
HOLOCRON_INLINE void AdderTask(const Add2dTask& t) {
  ColumnSums<W, NV, kBand>(t);
  for (int64_t pixel = 0; pixel < t.pixels; pixel += W * NV) {
    int64_t o = 0;
    for (; o + MR <= t.channels; o += MR) AdderMicroTile<W, MR, NV, kBand>(t, o, pixel);
    if (o < t.channels) AdderRemainder<W, MR - 1, NV, kBand>(t, o, pixel, t.channels - o);
  }
}

// Each micro-tile shape for both sources of the slices: a packed panel and the padded input band.
#define HOLOCRON_ADDER_TASKS(name, target, W, MR, NV)                                  \
  target void name(const Add2dTask& t) { AdderTask<W, MR, NV, false>(t); }             \
  target void name##Band(const Add2dTask& t) { AdderTask<W, MR, NV, true>(t); }
HOLOCRON_ADDER_TASKS(AdderTaskBaseline, , 4, 4, 2)
#if HOLOCRON_X86
HOLOCRON_ADDER_TASKS(AdderTaskAvx2, HOLOCRON_TARGET_AVX2, 8, 4, 2)
HOLOCRON_ADDER_TASKS(AdderTaskAvx2Narrow, HOLOCRON_TARGET_AVX2, 8, 8, 1)
HOLOCRON_ADDER_TASKS(AdderTaskAvx512, HOLOCRON_TARGET_AVX512, 16, 6, 2)
HOLOCRON_ADDER_TASKS(AdderTaskAvx512Narrow, HOLOCRON_TARGET_AVX512, 16, 12, 1)
#endif
#undef HOLOCRON_ADDER_TASKS

struct AdderVariant {
  void (*run)(const Add2dTask&);       // on a packed panel
  void (*run_band)(const Add2dTask&);  // on the padded input band
  int64_t micro_pixels;    // NR
  int64_t micro_channels;  // MR
};

// Two micro-tile shapes per instruction set, both about the register file's worth of accumulators: `wide` (2
// vectors of pixels) loads fewer pixels per tap and filter; `narrow` (1 vector, twice the channels) wastes fewer
// lanes on narrow images and gives twice the pixel tasks on small ones.
struct AdderVariants {
  AdderVariant wide;
  AdderVariant narrow;
};

AdderVariants SelectVariants() {
  switch (ActiveIsa()) {
#if HOLOCRON_X86
    case Isa::kAvx512:
      return {{&AdderTaskAvx512, &AdderTaskAvx512Band, 32, 6},
              {&AdderTaskAvx512Narrow, &AdderTaskAvx512NarrowBand, 16, 12}};
    case Isa::kAvx2:
      return {{&AdderTaskAvx2, &AdderTaskAvx2Band, 16, 4}, {&AdderTaskAvx2Narrow, &AdderTaskAvx2NarrowBand, 8, 8}};
#endif
    default:
      return {{&AdderTaskBaseline, &AdderTaskBaselineBand, 8, 4}, {&AdderTaskBaseline, &AdderTaskBaselineBand, 8, 4}};
  }
}

// dst[k] = src[2 k] for k < n: pairs of vectors deinterleaved, reading no further than src[2 (n - 1)].
void GatherStride2(const float* src, float* dst, int64_t n) {
  using V = simd::Vec<4>;
  using I = simd::VecTraits<4>::I;
  int64_t k = 0;
  for (; k + 4 < n; k += 4) {  // reads src[2k, 2k + 8), all below 2 (n - 1) + 1
    const V even = __builtin_shuffle(simd::Load<4>(src + 2 * k), simd::Load<4>(src + 2 * k + 4), I{0, 2, 4, 6});
    simd::Store<4>(dst + k, even);
  }
  for (; k < n; ++k) dst[k] = src[2 * k];
}

// One output row's share of a tile: columns [x0, x1) of output row y, at panel column `column` onwards.
struct PixelRun {
  int64_t y;
  int64_t x0;
  int64_t x1;
  int64_t column;
};
constexpr int64_t kMaxTilePixels = kMaxBlocksPerTile * 32;  // the widest micro-tile has 32 pixels

// n zeros from p: mostly none (runs inside the image), so no call for them.
HOLOCRON_INLINE void ZeroFill(float* p, int64_t n) {
  for (int64_t k = 0; k < n; ++k) p[k] = 0.0f;
}

// What one pixel run copies for one tap (i, j), the same for every channel: columns [a, b) of the run from input row
// iy, starting at the plane's element `source` (iy * W + a * sW + j * dW - pad_left), or nothing (source < 0) where
// row iy is padding.
struct RunCopy {
  int64_t source;
  int64_t a;
  int64_t b;
};

// Writes elements [l0, l0 + rows) of the slices of output pixels [first, first + count) of one (image, group) into
// panel rows of ld floats (row r holds element l0 + r), zeros for the padding and for the columns past count. The
// rows are visited tap by tap, the channels innermost, as the window geometry depends on the tap only: the tile's
// output rows are listed once, and what each of them copies once per tap.
void PackPanel(const Add2dParams& p, const float* x_group, int64_t first, int64_t count, int64_t ld, int64_t l0,
               int64_t rows, float* panel) {
  const Window2d& g = p.window;
  std::array<PixelRun, kMaxTilePixels + 1> runs;
  int64_t run_count = 0;
  for (int64_t done = 0; done < count; ++run_count) {
    const int64_t pixel = first + done;
    const int64_t x0 = pixel % g.out_w;
    const int64_t run = std::min(g.out_w - x0, count - done);
    runs[static_cast<size_t>(run_count)] = {pixel / g.out_w, x0, x0 + run, done};
    done += run;
  }
  std::array<RunCopy, kMaxTilePixels + 1> copies;
  const int64_t l1 = l0 + rows;
  const int64_t taps = g.kernel_h * g.kernel_w;
  const int64_t plane_size = g.height * g.width;
  for (int64_t j = 0; j < g.kernel_w; ++j) {
    // Output columns x whose tap j lands inside the input row: 0 <= x * sW + offset < W.
    const int64_t offset = j * g.dilation_w - g.pad_left;
    const int64_t x_lo = std::clamp<int64_t>(-FloorDiv(offset, g.stride_w), 0, g.out_w);
    const int64_t x_hi = std::clamp<int64_t>(FloorDiv(g.width - 1 - offset, g.stride_w) + 1, 0, g.out_w);
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      // The block's elements of tap (i, j): l = c * kH * kW + i * kW + j with l0 <= l < l1.
      const int64_t tap = i * g.kernel_w + j;
      const int64_t c_first = l0 <= tap ? 0 : CeilDiv(l0 - tap, taps);
      if (c_first * taps + tap >= l1) continue;
      for (int64_t r = 0; r < run_count; ++r) {
        const PixelRun& run = runs[static_cast<size_t>(r)];
        const int64_t iy = run.y * g.stride_h + i * g.dilation_h - g.pad_top;
        const int64_t a = std::clamp(x_lo, run.x0, run.x1);
        const int64_t b = std::clamp(x_hi, a, run.x1);
        const bool inside = iy >= 0 && iy < g.height;
        copies[static_cast<size_t>(r)] = {inside ? iy * g.width + a * g.stride_w + offset : -1, a, b};
      }
      for (int64_t c = c_first, l = c_first * taps + tap; l < l1; ++c, l += taps) {
        const float* plane = x_group + c * plane_size;
        float* dst = panel + (l - l0) * ld;
        for (int64_t r = 0; r < run_count; ++r) {
          const PixelRun& run = runs[static_cast<size_t>(r)];
          const RunCopy& copy = copies[static_cast<size_t>(r)];
          float* out = dst + run.column - run.x0;  // out[x] is the panel entry of column x of this row
          if (copy.source < 0) {
            ZeroFill(out + run.x0, run.x1 - run.x0);
            continue;
          }
          ZeroFill(out + run.x0, copy.a - run.x0);
          const float* src = plane + copy.source;
          if (g.stride_w == 1) {
            std::memcpy(out + copy.a, src, static_cast<size_t>(copy.b - copy.a) * sizeof(float));
          } else if (g.stride_w == 2) {
            GatherStride2(src, out + copy.a, copy.b - copy.a);
          } else {
            for (int64_t x = copy.a; x < copy.b; ++x) out[x] = src[(x - copy.a) * g.stride_w];
          }
          ZeroFill(out + copy.b, run.x1 - copy.b);
        }
        ZeroFill(dst + count, ld - count);
      }
    }
  }
}

// Per-pixel statistics of normalize_slices: (S - mean(S)) / sqrt(var(S) + eps), biased variance, two passes in
// double: the sum of the slice is exact for any realistic slice length, so a constant slice centres to exactly 0
// (float32 rounding of the mean would leave ulp-sized residues that 1 / sqrt(eps) blows up), and near-constant
// slices keep their relative accuracy. A slice with var + eps == 0 (constant, eps = 0) normalises to 0. The sums run
// over the panel's rows (a row block of the slice) and accumulate over the blocks in l order. This pass is O(slice)
// per pixel against the O(slice * C_out) of the distances.
struct SliceStats {
  double* mean;   // ld sums, then means
  double* scale;  // ld sums of squared deviations, then 1 / sqrt(var + eps)
  int64_t ld;

  void Clear() {
    std::fill(mean, mean + ld, 0.0);
    std::fill(scale, scale + ld, 0.0);
  }
  void AddSums(const float* panel, int64_t rows) {
    for (int64_t l = 0; l < rows; ++l) {
      const float* row = panel + l * ld;
      for (int64_t k = 0; k < ld; ++k) mean[k] += row[k];
    }
  }
  void FinishMeans(int64_t slice) {
    const double inv_slice = 1.0 / static_cast<double>(slice);
    for (int64_t k = 0; k < ld; ++k) mean[k] *= inv_slice;
  }
  void AddSquares(const float* panel, int64_t rows) {
    for (int64_t l = 0; l < rows; ++l) {
      const float* row = panel + l * ld;
      for (int64_t k = 0; k < ld; ++k) {
        const double d = row[k] - mean[k];
        scale[k] += d * d;
      }
    }
  }
  void FinishScales(int64_t slice, float eps) {
    const double inv_slice = 1.0 / static_cast<double>(slice);
    for (int64_t k = 0; k < ld; ++k) {
      const double denominator = scale[k] * inv_slice + static_cast<double>(eps);
      scale[k] = denominator > 0.0 ? 1.0 / std::sqrt(denominator) : 0.0;
    }
  }
  void Normalize(float* panel, int64_t rows) const {
    for (int64_t l = 0; l < rows; ++l) {
      float* row = panel + l * ld;
      for (int64_t k = 0; k < ld; ++k) row[k] = static_cast<float>((row[k] - mean[k]) * scale[k]);
    }
  }
};

// Sums of each filter over consecutive blocks of `block` slice elements, for the min identity: sums[b * C_out + o],
// in double with eight running sums (so the loop vectorizes), rounded once.
std::vector<float> FilterSums(const float* w, int64_t out_channels, int64_t slice, int64_t block) {
  const int64_t blocks = CeilDiv(slice, block);
  std::vector<float> sums(static_cast<size_t>(blocks * out_channels));
  for (int64_t o = 0; o < out_channels; ++o) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* filter = w + o * slice + b * block;
      const int64_t count = std::min(block, slice - b * block);
      double lanes[8] = {};
      int64_t l = 0;
      for (; l + 8 <= count; l += 8) {
        for (int k = 0; k < 8; ++k) lanes[k] += filter[l + k];
      }
      for (; l < count; ++l) lanes[0] += filter[l];
      double sum = 0.0;
      for (const double lane : lanes) sum += lane;
      sums[static_cast<size_t>(b * out_channels + o)] = static_cast<float>(sum);
    }
  }
  return sums;
}

// Few pixel tasks: the output channels are split too, so every thread gets work; the chunk size in channels.
int64_t ChannelChunk(int64_t group_out, int64_t pixel_tasks, int64_t micro_channels) {
  const int64_t max_chunks = CeilDiv(group_out, micro_channels);
  const int64_t wanted = std::clamp<int64_t>(CeilDiv(TaskCountHint(), pixel_tasks), 1, max_chunks);
  return CeilDiv(CeilDiv(group_out, wanted), micro_channels) * micro_channels;
}

// Which (image, group, pixel unit: a tile or a band, chunk of output channels) task `index` is; chunks vary fastest.
struct TaskPlace {
  int64_t n;
  int64_t group;
  int64_t unit;
  int64_t chunk;
};

TaskPlace PlaceOf(size_t index, int64_t groups, int64_t units, int64_t chunks) {
  const int64_t id = static_cast<int64_t>(index);
  return {id / (chunks * units * groups), (id / (chunks * units)) % groups, (id / chunks) % units, id % chunks};
}

// The band path: at stride 1 along the rows, the slices of one output row's pixels are shifted windows of the
// padded input rows. Instead of packing each pixel's slice (kH * kW copies of every input value, each then read by
// every filter of the group: with few filters the copies are a large share of the work), a task copies the input rows
// its band of output rows reads, zero padding written out, once, and the micro-tiles load each tap's pixels from
// there (Row<true>): the same values summed in the same order as from a panel, so the same results bit for bit.
// Lanes past the end of an output row read padding or the next columns and are never stored (an inf or NaN there only
// sends the micro-tile to the exact loop). Taken without slice
// normalization, where output rows fill the micro-tile's vectors (at most 1/8 of the lanes idle), and where the band
// of at least one output row and one micro-tile's filters fit in L1 together (kBandBudgetFloats, 32 KiB); otherwise
// the panel.
constexpr int64_t kBandBudgetFloats = 8 * 1024;

struct BandGeometry {
  int64_t ld;       // output row length rounded up to whole micro-tiles
  int64_t row;      // floats per padded input row: ld + (kW - 1) dW
  int64_t band;     // output rows per task
  int64_t in_rows;  // input rows a band reads
  int64_t plane;    // floats per input channel in the band: in_rows * row
};

int64_t BandInputRows(const Window2d& g, int64_t band) {
  return (band - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1;
}

// The band geometry, or band 0 where the band path does not apply.
BandGeometry PlanBand(const Add2dParams& p, const AdderVariant& variant) {
  const Window2d& g = p.window;
  const int64_t group_in = g.channels / g.groups;
  BandGeometry b{};
  b.ld = CeilDiv(g.out_w, variant.micro_pixels) * variant.micro_pixels;
  if (g.stride_w != 1 || p.normalize_slices || 8 * b.ld > 9 * g.out_w) return b;
  b.row = b.ld + (g.kernel_w - 1) * g.dilation_w;
  // The band and one micro-tile's filters stay in L1 together.
  const int64_t budget = kBandBudgetFloats - variant.micro_channels * group_in * g.kernel_h * g.kernel_w;
  int64_t band = std::clamp<int64_t>(kMaxTilePixels / g.out_w, 1, g.out_h);
  while (band > 1 && group_in * BandInputRows(g, band) * b.row > budget) --band;
  if (group_in * BandInputRows(g, band) * b.row > budget) return b;
  b.band = CeilDiv(g.out_h, CeilDiv(g.out_h, band));  // evened out over the image
  b.in_rows = BandInputRows(g, b.band);
  b.plane = b.in_rows * b.row;
  return b;
}

// Copies the input rows of output rows [y0, y0 + band) of one (image, group), zero padding written out: padded
// column X of row r of channel c holds X[c, y0 * sH + r - pad_top, X - pad_left], or 0 outside the input.
void PackBand(const Window2d& g, const BandGeometry& b, const float* x_group, int64_t group_in, int64_t y0,
              float* band) {
  for (int64_t c = 0; c < group_in; ++c) {
    for (int64_t r = 0; r < b.in_rows; ++r) {
      float* dst = band + c * b.plane + r * b.row;
      const int64_t iy = y0 * g.stride_h + r - g.pad_top;
      if (iy < 0 || iy >= g.height) {
        std::fill(dst, dst + b.row, 0.0f);
        continue;
      }
      const float* src = x_group + (c * g.height + iy) * g.width;
      const int64_t lo = std::min(g.pad_left, b.row);
      const int64_t hi = std::clamp(g.pad_left + g.width, lo, b.row);
      std::fill(dst, dst + lo, 0.0f);
      std::memcpy(dst + lo, src + (lo - g.pad_left), static_cast<size_t>(hi - lo) * sizeof(float));
      std::fill(dst + hi, dst + b.row, 0.0f);
    }
  }
}

void Add2dBand(const Add2dParams& p, const AdderVariant& variant, const BandGeometry& b, const float* x,
               const float* w, const float* bias, float* y, const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const int64_t group_in = g.channels / g.groups;
  const int64_t group_out = p.out_channels / g.groups;
  const int64_t slice = group_in * g.kernel_h * g.kernel_w;
  const int64_t pixels = g.out_h * g.out_w;
  const int64_t bands = CeilDiv(g.out_h, b.band);
  const int64_t chunk = ChannelChunk(group_out, g.batch * g.groups * bands, variant.micro_channels);
  const int64_t chunks = CeilDiv(group_out, chunk);
  const std::vector<float> w_sums = FilterSums(w, p.out_channels, slice, slice);
  std::vector<int64_t> offsets(static_cast<size_t>(slice));  // l = (c kH + i) kW + j
  for (int64_t l = 0; l < slice; ++l) {
    const int64_t j = l % g.kernel_w;
    const int64_t i = (l / g.kernel_w) % g.kernel_h;
    const int64_t c = l / (g.kernel_w * g.kernel_h);
    offsets[static_cast<size_t>(l)] = c * b.plane + i * g.dilation_h * b.row + j * g.dilation_w;
  }

  TaskFailures failures;
  const auto task = [&](size_t index) {
    const auto [n, group, band_id, chunk_id] = PlaceOf(index, g.groups, bands, chunks);
    const int64_t y0 = band_id * b.band;
    Scratch scratch(static_cast<size_t>(group_in * b.plane + b.ld));  // the band, then ld column sums
    if (scratch.data() == nullptr) {
      failures.Record();
      return;
    }
    float* band = scratch.data();
    PackBand(g, b, x + (n * g.channels + group * group_in) * g.height * g.width, group_in, y0, band);
    const int64_t o0 = group * group_out + chunk_id * chunk;
    Add2dTask t;
    t.ld = b.ld;
    t.pixels = g.out_w;
    t.rows = slice;
    t.w_stride = slice;
    t.first = true;
    t.last = true;
    t.w = w + o0 * slice;
    t.bias = p.has_bias ? bias + o0 : nullptr;
    t.channels = std::min(chunk, group_out - chunk_id * chunk);
    t.y_stride = pixels;
    t.w_sums = w_sums.data() + o0;
    t.column_sums = band + group_in * b.plane;
    t.offsets = offsets.data();
    for (int64_t row = y0; row < std::min(y0 + b.band, g.out_h); ++row) {
      t.panel = band + (row - y0) * g.stride_h * b.row;
      t.y = y + (n * p.out_channels + o0) * pixels + row * g.out_w;
      variant.run_band(t);
    }
  };
  parallel(static_cast<size_t>(g.batch * g.groups * bands * chunks), task);
  failures.ThrowIfAny();
}

}  // namespace

void Add2dCpu(const Add2dParams& p, const float* x, const float* w, const float* bias, float* y,
              const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const AdderVariants variants = SelectVariants();
  const int64_t group_in = g.channels / g.groups;
  const int64_t group_out = p.out_channels / g.groups;
  const int64_t slice = group_in * g.kernel_h * g.kernel_w;
  const int64_t pixels = g.out_h * g.out_w;
  if (g.batch == 0 || pixels == 0 || group_out == 0) return;
  // The wide micro-tile, unless its pixel tiles are too few to go round the threads.
  const bool few_tiles = g.batch * g.groups * CeilDiv(pixels, variants.wide.micro_pixels) < TaskCountHint();
  const AdderVariant& variant = few_tiles ? variants.narrow : variants.wide;
  // The band path where it applies, with the narrow micro-tile if the output rows do not fill the wide one's vectors.
  for (const AdderVariant* v : {&variant, &variants.narrow}) {
    const BandGeometry band = PlanBand(p, *v);
    if (band.band > 0) {
      Add2dBand(p, *v, band, x, w, bias, y, parallel);
      return;
    }
  }

  // Tiles of whole micro-tiles, as many as the panel budget allows, evened out over the image; slices longer than
  // the budget allows for one micro-tile go through the panel in row blocks.
  const int64_t blocks = CeilDiv(pixels, variant.micro_pixels);
  const int64_t max_blocks =
      std::clamp<int64_t>(kPanelBudgetFloats / (slice * variant.micro_pixels), 1, kMaxBlocksPerTile);
  const int64_t tiles = CeilDiv(blocks, max_blocks);
  const int64_t tile = CeilDiv(blocks, tiles) * variant.micro_pixels;
  const int64_t panel_rows = std::min(slice, kPanelBudgetFloats / variant.micro_pixels);
  const int64_t chunk = ChannelChunk(group_out, g.batch * g.groups * tiles, variant.micro_channels);
  const int64_t chunks = CeilDiv(group_out, chunk);

  const std::vector<float> w_sums = FilterSums(w, p.out_channels, slice, panel_rows);

  TaskFailures failures;
  const auto task = [&](size_t index) {
    const auto [n, group, tile_id, chunk_id] = PlaceOf(index, g.groups, tiles, chunks);
    const int64_t first = tile_id * tile;
    const int64_t count = std::min(tile, pixels - first);
    const int64_t ld = CeilDiv(count, variant.micro_pixels) * variant.micro_pixels;
    const int64_t rows = std::min(slice, panel_rows);
    // Panel, then 2 * ld doubles of slice statistics (ld is a multiple of 8: they stay aligned), then ld column sums.
    Scratch scratch(static_cast<size_t>(rows * ld + 5 * ld));
    if (scratch.data() == nullptr) {
      failures.Record();
      return;
    }
    float* panel = scratch.data();
    auto* stats_data = reinterpret_cast<double*>(panel + rows * ld);
    SliceStats stats{stats_data, stats_data + ld, ld};
    float* column_sums = panel + rows * ld + 4 * ld;
    const float* x_group = x + (n * g.channels + group * group_in) * g.height * g.width;
    if (p.normalize_slices && rows < slice) {  // statistics of the whole slice, block by block
      stats.Clear();
      for (int64_t l0 = 0; l0 < slice; l0 += rows) {
        const int64_t block_rows = std::min(rows, slice - l0);
        PackPanel(p, x_group, first, count, ld, l0, block_rows, panel);
        stats.AddSums(panel, block_rows);
      }
      stats.FinishMeans(slice);
      for (int64_t l0 = 0; l0 < slice; l0 += rows) {
        const int64_t block_rows = std::min(rows, slice - l0);
        PackPanel(p, x_group, first, count, ld, l0, block_rows, panel);
        stats.AddSquares(panel, block_rows);
      }
      stats.FinishScales(slice, p.eps);
    }
    const int64_t o0 = group * group_out + chunk_id * chunk;
    for (int64_t l0 = 0; l0 < slice; l0 += rows) {
      const int64_t block_rows = std::min(rows, slice - l0);
      PackPanel(p, x_group, first, count, ld, l0, block_rows, panel);
      if (p.normalize_slices) {
        if (rows == slice) {  // the whole slice in the panel
          stats.Clear();
          stats.AddSums(panel, slice);
          stats.FinishMeans(slice);
          stats.AddSquares(panel, slice);
          stats.FinishScales(slice, p.eps);
        }
        stats.Normalize(panel, block_rows);
      }
      Add2dTask t;
      t.panel = panel;
      t.ld = ld;
      t.pixels = count;
      t.rows = block_rows;
      t.w_stride = slice;
      t.first = l0 == 0;
      t.last = l0 + block_rows == slice;
      t.w = w + o0 * slice + l0;
      t.bias = p.has_bias ? bias + o0 : nullptr;
      t.channels = std::min(chunk, group_out - chunk_id * chunk);
      t.y = y + (n * p.out_channels + o0) * pixels + first;
      t.y_stride = pixels;
      t.w_sums = w_sums.data() + (l0 / rows) * p.out_channels + o0;
      t.column_sums = column_sums;
      t.offsets = nullptr;
      variant.run(t);
    }
  };
  parallel(static_cast<size_t>(g.batch * g.groups * tiles * chunks), task);
  failures.ThrowIfAny();
}

// float16: through float32 scratch (kernels/half_chunks.h).
void Add2dCpuHalf(const Add2dParams& p, const uint16_t* x, const uint16_t* w, const uint16_t* bias, uint16_t* y,
                  const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const int64_t slice = g.channels / std::max<int64_t>(g.groups, 1) * g.kernel_h * g.kernel_w;
  const std::vector<float> w_float = half_chunks::ConvertAll(w, p.out_channels * slice, parallel);
  const std::vector<float> b_float = half_chunks::ConvertAll(p.has_bias ? bias : nullptr, p.out_channels, parallel);
  std::array<half_chunks::Stream, 2> streams{half_chunks::Stream{g.channels * g.height * g.width, x, nullptr},
                                             half_chunks::Stream{p.out_channels * g.out_h * g.out_w, nullptr, y}};
  half_chunks::InChunks(g.batch, streams, parallel, [&](int64_t images) {
    Add2dParams chunk = p;
    chunk.window.batch = images;
    Add2dCpu(chunk, streams[0].scratch.data(), w_float.data(), p.has_bias ? b_float.data() : nullptr,
             streams[1].scratch.data(), parallel);
  });
}

}  // namespace holocron::kernels
