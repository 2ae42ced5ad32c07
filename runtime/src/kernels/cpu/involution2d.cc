// Involution2d (https://arxiv.org/abs/2103.06255) on the CPU:
//   Y[n, c, y, x] = sum_{i, j} K[n, g * kH * kW + i * kW + j, y, x] * X_pad[n, c, y * sH + i * dH, x * sW + j * dW],
// g = c // (C / group).
//
// A task owns (image n, group g, a chunk of g's channels, a block of output rows). It copies the input rows the
// block reads into a zero-padded scratch, split into sW phases per row (phase q holds padded columns q, q + sW, ...)
// so that every tap reads W consecutive output pixels with one contiguous load whatever the stride. Then, for each
// vector of W output pixels and block of CB channels, it loads each tap's kernel vector once and accumulates it
// against the CB channels' shifted inputs in registers. Scratch: the block's input rows of the chunk, bounded by
// kScratchBudgetFloats whatever the strides, dilations and pads (the layout
// stores only rows and columns some output reads).
#include <algorithm>
#include <cstring>

#include "kernels/cpu/launch.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/half_chunks.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

namespace holocron::kernels {
namespace {

using simd::Vec;

constexpr int64_t kScratchBudgetFloats = 64 * 1024;  // 256 KiB
constexpr int64_t kMaxChunkChannels = 32;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }

// What one task computes, once its scratch is filled.
struct InvolutionTask {
  const float* rows;           // scratch: [row][channel][phase][column]
  int64_t channel_stride;      // stride_w * phase_width
  int64_t row_stride;          // channels * stride_w * phase_width
  const int64_t* tap_column;   // per j: phase * phase_width + column shift
  int64_t kernel_h, kernel_w;  // taps
  int64_t tap_row_step;        // dilation_h * row_stride
  int64_t out_row_step;        // stride_h * row_stride
  const float* kernels;        // K[n, g * taps, 0, 0]
  int64_t plane;               // H_out * W_out
  int64_t out_w;
  int64_t first_row, row_count;
  int64_t channels;  // in the chunk
  float* y;          // Y[n, first channel of the chunk, 0, 0]
  float* tail;       // taps * W floats: kernel values of a partial pixel vector
};

template <int W, int CB>
HOLOCRON_INLINE void InvolveChannels(const InvolutionTask& t, int64_t c0, int64_t local_row, int64_t x,
                                     const float* k, int64_t k_stride, int64_t lanes) {
  Vec<W> acc[CB];
  for (int c = 0; c < CB; ++c) acc[c] = simd::Zero<W>();
  const float* base = t.rows + c0 * t.channel_stride + local_row * t.out_row_step + x;
  for (int64_t i = 0; i < t.kernel_h; ++i) {
    const float* tap_row = base + i * t.tap_row_step;
    const float* k_row = k + i * t.kernel_w * k_stride;
    for (int64_t j = 0; j < t.kernel_w; ++j) {
      const Vec<W> kv = simd::Load<W>(k_row + j * k_stride);
      const float* src = tap_row + t.tap_column[j];
      for (int c = 0; c < CB; ++c) acc[c] += kv * simd::Load<W>(src + c * t.channel_stride);
    }
  }
  float* out = t.y + c0 * t.plane + (t.first_row + local_row) * t.out_w + x;
  for (int c = 0; c < CB; ++c) {
    if (lanes == W) {
      simd::Store<W>(out + c * t.plane, acc[c]);
    } else {
      simd::StorePartial<W>(out + c * t.plane, acc[c], lanes);
    }
  }
}

template <int W, int CB>
HOLOCRON_INLINE void InvolveRemainder(const InvolutionTask& t, int64_t c0, int64_t local_row, int64_t x,
                                      const float* k, int64_t k_stride, int64_t lanes, int64_t remaining) {
  if constexpr (CB > 0) {
    if (remaining == CB) {
      InvolveChannels<W, CB>(t, c0, local_row, x, k, k_stride, lanes);
    } else {
      InvolveRemainder<W, CB - 1>(t, c0, local_row, x, k, k_stride, lanes, remaining);
    }
  }
}

// One vector of W pixels of output row local_row, every channel of the chunk.
template <int W, int CB>
HOLOCRON_INLINE void InvolveVector(const InvolutionTask& t, int64_t local_row, int64_t x) {
  const int64_t lanes = std::min<int64_t>(W, t.out_w - x);
  const float* k = t.kernels + (t.first_row + local_row) * t.out_w + x;
  int64_t k_stride = t.plane;
  if (lanes < W) {  // the last vector of the row: copy its kernel values so no load passes the row end
    const int64_t taps = t.kernel_h * t.kernel_w;
    for (int64_t tap = 0; tap < taps; ++tap) {
      float* dst = t.tail + tap * W;
      std::fill(dst, dst + W, 0.0f);
      std::copy(k + tap * t.plane, k + tap * t.plane + lanes, dst);
    }
    k = t.tail;
    k_stride = W;
  }
  int64_t c = 0;
  for (; c + CB <= t.channels; c += CB) InvolveChannels<W, CB>(t, c, local_row, x, k, k_stride, lanes);
  if (c < t.channels) InvolveRemainder<W, CB - 1>(t, c, local_row, x, k, k_stride, lanes, t.channels - c);
}

// Two consecutive output rows at once, when row y + 1 reads with tap row i - 1 what row y reads with tap row i
// (stride_h == dilation_h): each input vector loaded feeds both rows, halving the input loads.
template <int W, int CB, bool kTop, bool kBottom>
HOLOCRON_INLINE void PairTapRow(const InvolutionTask& t, const float* src_row, const float* k_top,
                                const float* k_bottom, Vec<W> (&top)[CB], Vec<W> (&bottom)[CB]) {
  for (int64_t j = 0; j < t.kernel_w; ++j) {
    const float* src = src_row + t.tap_column[j];
    Vec<W> k0 = simd::Zero<W>(), k1 = simd::Zero<W>();
    if constexpr (kTop) k0 = simd::Load<W>(k_top + j * t.plane);
    if constexpr (kBottom) k1 = simd::Load<W>(k_bottom + j * t.plane);
    for (int c = 0; c < CB; ++c) {
      const Vec<W> v = simd::Load<W>(src + c * t.channel_stride);
      if constexpr (kTop) top[c] += k0 * v;
      if constexpr (kBottom) bottom[c] += k1 * v;
    }
  }
}

template <int W, int CB>
HOLOCRON_INLINE void InvolveChannelsPair(const InvolutionTask& t, int64_t c0, int64_t local_row, int64_t x) {
  Vec<W> top[CB], bottom[CB];
  for (int c = 0; c < CB; ++c) top[c] = bottom[c] = simd::Zero<W>();
  const float* base = t.rows + c0 * t.channel_stride + local_row * t.out_row_step + x;
  const float* k_top = t.kernels + (t.first_row + local_row) * t.out_w + x;
  const float* k_bottom = k_top + t.out_w;
  const int64_t tap_row_k = t.kernel_w * t.plane;
  PairTapRow<W, CB, true, false>(t, base, k_top, nullptr, top, bottom);
  for (int64_t a = 1; a < t.kernel_h; ++a) {
    PairTapRow<W, CB, true, true>(t, base + a * t.tap_row_step, k_top + a * tap_row_k, k_bottom + (a - 1) * tap_row_k,
                                  top, bottom);
  }
  PairTapRow<W, CB, false, true>(t, base + t.kernel_h * t.tap_row_step, nullptr,
                                 k_bottom + (t.kernel_h - 1) * tap_row_k, top, bottom);
  float* out = t.y + c0 * t.plane + (t.first_row + local_row) * t.out_w + x;
  for (int c = 0; c < CB; ++c) {
    simd::Store<W>(out + c * t.plane, top[c]);
    simd::Store<W>(out + c * t.plane + t.out_w, bottom[c]);
  }
}

template <int W, int CB>
HOLOCRON_INLINE void InvolvePairRemainder(const InvolutionTask& t, int64_t c0, int64_t local_row, int64_t x,
                                          int64_t remaining) {
  if constexpr (CB > 0) {
    if (remaining == CB) {
      InvolveChannelsPair<W, CB>(t, c0, local_row, x);
    } else {
      InvolvePairRemainder<W, CB - 1>(t, c0, local_row, x, remaining);
    }
  }
}

// Output columns [x_begin, x_end) of the task's rows: CB channels per block for one row, PB for a pair of rows (two
// accumulators each); a last partial vector only where x_end is the row's end.
template <int W, int CB, int PB>
HOLOCRON_INLINE void InvolutionRows(const InvolutionTask& t, int64_t x_begin, int64_t x_end) {
  int64_t r = 0;
  if (t.out_row_step == t.tap_row_step) {
    for (; r + 1 < t.row_count; r += 2) {
      int64_t x = x_begin;
      for (; x + W <= x_end; x += W) {
        int64_t c = 0;
        for (; c + PB <= t.channels; c += PB) InvolveChannelsPair<W, PB>(t, c, r, x);
        if (c < t.channels) InvolvePairRemainder<W, PB - 1>(t, c, r, x, t.channels - c);
      }
      if (x < x_end) {
        InvolveVector<W, CB>(t, r, x);
        InvolveVector<W, CB>(t, r + 1, x);
      }
    }
  }
  for (; r < t.row_count; ++r) {
    for (int64_t x = x_begin; x < x_end; x += W) InvolveVector<W, CB>(t, r, x);
  }
}

void InvolutionBaseline(const InvolutionTask& t) { InvolutionRows<4, 8, 6>(t, 0, t.out_w); }
#if HOLOCRON_X86
HOLOCRON_TARGET_AVX2 void InvolutionAvx2(const InvolutionTask& t) { InvolutionRows<8, 8, 6>(t, 0, t.out_w); }
// Whole 16-lane vectors, then the rest of each row in 8-lane ones: a 56-wide row is 3 x 16 + 8 instead of ending on
// a half-empty vector that goes through the partial-vector path (AVX-512 ran 1.4x slower than AVX2 there).
HOLOCRON_TARGET_AVX512 void InvolutionAvx512(const InvolutionTask& t) {
  const int64_t split = t.out_w / 16 * 16;
  InvolutionRows<16, 8, 12>(t, 0, split);
  if (split < t.out_w) InvolutionRows<8, 8, 6>(t, split, t.out_w);
}
#endif

struct InvolutionVariant {
  void (*run)(const InvolutionTask&);
  int64_t lanes;
};

InvolutionVariant SelectVariant() {
  switch (ActiveIsa()) {
#if HOLOCRON_X86
    case Isa::kAvx512:
      return {&InvolutionAvx512, 16};
    case Isa::kAvx2:
      return {&InvolutionAvx2, 8};
#endif
    default:
      return {&InvolutionBaseline, 4};
  }
}

// Which padded input rows and columns a task's scratch holds. Rows: either the consecutive padded rows
// [first, first + rows) (`gather_rows` false: output row r tap row i reads scratch row r * sH + i * dH), or, when the
// stride or dilation would make that span mostly unused rows, the kH rows each output row reads, one after the other
// (scratch row r * kH + i). Columns: per row and channel, `segments` runs of `segment_width` columns, segment s
// holding padded columns base(s) + col * sW: the sW phases (base q, `gather_columns` false) or one run per tap column
// (base j * dW). Either way every tap reads consecutive output pixels from consecutive scratch columns, and the
// scratch never holds a column or row no output reads.
struct RowLayout {
  bool gather_rows;
  bool gather_columns;
  int64_t segments;
  int64_t segment_width;
};

// Fills the scratch rows of `channels` channels for output rows [first_out_row, first_out_row + out_rows):
// dst[((r * channels + c) * segments + s) * segment_width + col] = X_pad[c, row(r), base(s) + col * sW].
void FillRows(const Window2d& g, const RowLayout& layout, const float* x_chunk, int64_t channels,
              int64_t first_out_row, int64_t rows, float* dst) {
  const int64_t row_floats = layout.segments * layout.segment_width;
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = x_chunk + c * g.height * g.width;
    for (int64_t r = 0; r < rows; ++r) {
      float* row_dst = dst + (r * channels + c) * row_floats;
      const int64_t padded_row = layout.gather_rows
                                     ? (first_out_row + r / g.kernel_h) * g.stride_h + (r % g.kernel_h) * g.dilation_h
                                     : first_out_row * g.stride_h + r;
      const int64_t iy = padded_row - g.pad_top;
      if (iy < 0 || iy >= g.height) {
        std::fill(row_dst, row_dst + row_floats, 0.0f);
        continue;
      }
      const float* src = plane + iy * g.width;
      for (int64_t q = 0; q < layout.segments; ++q) {
        float* out = row_dst + q * layout.segment_width;
        const int64_t base = layout.gather_columns ? q * g.dilation_w : q;
        // Columns whose input index ix = base + col * sW - pad_left lies in [0, W).
        const int64_t width = layout.segment_width;
        const int64_t lo = std::min(width, CeilDiv(std::max<int64_t>(0, g.pad_left - base), g.stride_w));
        const int64_t hi = std::clamp<int64_t>(
            base >= g.width + g.pad_left ? 0 : CeilDiv(g.width + g.pad_left - base, g.stride_w), lo, width);
        std::fill(out, out + lo, 0.0f);
        if (g.stride_w == 1) {
          std::memcpy(out + lo, src + base + lo - g.pad_left, static_cast<size_t>(hi - lo) * sizeof(float));
        } else {
          for (int64_t col = lo; col < hi; ++col) out[col] = src[base + col * g.stride_w - g.pad_left];
        }
        std::fill(out + hi, out + width, 0.0f);
      }
    }
  }
}

}  // namespace

void Involution2dCpu(const Involution2dParams& p, const float* x, const float* kernel, float* y,
                     const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const InvolutionVariant variant = SelectVariant();
  if (g.batch == 0 || g.out_h == 0 || g.out_w == 0 || g.channels == 0) return;
  const int64_t group_channels = g.channels / g.groups;
  const int64_t taps = g.kernel_h * g.kernel_w;
  const int64_t plane = g.out_h * g.out_w;
  // Scratch layout (see RowLayout): phases unless one run per tap column is smaller; consecutive rows unless kH rows
  // per output row are fewer. Sizes compared in 128 bits: strides, dilations and pads may be as large as int64.
  const int64_t vector_width = RoundUp(g.out_w, variant.lanes);
  RowLayout layout;
  {
    const __int128 shift = static_cast<__int128>(g.kernel_w - 1) * g.dilation_w / g.stride_w;
    const __int128 phase_floats = static_cast<__int128>(g.stride_w) * (vector_width + shift);
    const __int128 gather_floats = static_cast<__int128>(g.kernel_w) * vector_width;
    layout.gather_columns = gather_floats < phase_floats;
    layout.segments = layout.gather_columns ? g.kernel_w : g.stride_w;
    layout.segment_width = layout.gather_columns ? vector_width : vector_width + static_cast<int64_t>(shift);
    const __int128 span = static_cast<__int128>(g.kernel_h - 1) * g.dilation_h + 1;
    layout.gather_rows = span > g.kernel_h || g.stride_h > g.kernel_h;
  }
  const auto rows_for = [&](int64_t out_rows) {
    if (layout.gather_rows) return out_rows * g.kernel_h;
    return (out_rows - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1;
  };
  const auto floats_for = [&](int64_t ch, int64_t out_rows) {
    return ch * rows_for(out_rows) * layout.segments * layout.segment_width;
  };

  int64_t chunk = std::min(group_channels, kMaxChunkChannels);
  const int64_t chunk_tasks = g.batch * g.groups * CeilDiv(group_channels, chunk);
  int64_t block = CeilDiv(g.out_h, std::clamp<int64_t>(CeilDiv(TaskCountHint(), chunk_tasks), 1, g.out_h));
  while (block > 1 && floats_for(chunk, block) > kScratchBudgetFloats) block = CeilDiv(block, 2);
  while (chunk > 1 && floats_for(chunk, block) > kScratchBudgetFloats) chunk = CeilDiv(chunk, 2);
  const int64_t chunks = CeilDiv(group_channels, chunk);
  const int64_t blocks = CeilDiv(g.out_h, block);
  const int64_t row_floats_per_channel = layout.segments * layout.segment_width;

  TaskFailures failures;
  const auto task = [&](size_t index) {
    const int64_t id = static_cast<int64_t>(index);
    const int64_t block_id = id % blocks;
    const int64_t chunk_id = (id / blocks) % chunks;
    const int64_t group = (id / (blocks * chunks)) % g.groups;
    const int64_t n = id / (blocks * chunks * g.groups);
    const int64_t first_row = block_id * block;
    const int64_t row_count = std::min(block, g.out_h - first_row);
    const int64_t c0 = group * group_channels + chunk_id * chunk;
    const int64_t channels = std::min(chunk, group_channels - chunk_id * chunk);
    const int64_t rows = rows_for(row_count);
    const int64_t row_floats = channels * rows * row_floats_per_channel;
    // Scratch: rows, then the partial-vector kernel values, then the per-column tap offsets (int64).
    const int64_t table_offset = RoundUp(row_floats + taps * variant.lanes, 2);
    Scratch scratch(static_cast<size_t>(table_offset + 2 * g.kernel_w));
    if (scratch.data() == nullptr) {
      failures.Record();
      return;
    }
    float* tail = scratch.data() + row_floats;
    auto* tap_column = reinterpret_cast<int64_t*>(scratch.data() + table_offset);
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      if (layout.gather_columns) {
        tap_column[j] = j * layout.segment_width;
      } else {
        const int64_t shift = j * g.dilation_w;
        tap_column[j] = (shift % g.stride_w) * layout.segment_width + shift / g.stride_w;
      }
    }
    FillRows(g, layout, x + (n * g.channels + c0) * g.height * g.width, channels, first_row, rows, scratch.data());
    InvolutionTask t;
    t.rows = scratch.data();
    t.channel_stride = row_floats_per_channel;
    t.row_stride = channels * row_floats_per_channel;
    t.tap_column = tap_column;
    t.kernel_h = g.kernel_h;
    t.kernel_w = g.kernel_w;
    t.tap_row_step = layout.gather_rows ? t.row_stride : g.dilation_h * t.row_stride;
    t.out_row_step = layout.gather_rows ? g.kernel_h * t.row_stride : g.stride_h * t.row_stride;
    t.kernels = kernel + (n * g.groups + group) * taps * plane;
    t.plane = plane;
    t.out_w = g.out_w;
    t.first_row = first_row;
    t.row_count = row_count;
    t.channels = channels;
    t.y = y + (n * g.channels + c0) * plane;
    t.tail = tail;
    variant.run(t);
  };
  parallel(static_cast<size_t>(g.batch * g.groups * chunks * blocks), task);
  failures.ThrowIfAny();
}

// float16: through float32 scratch (kernels/half_chunks.h).
void Involution2dCpuHalf(const Involution2dParams& p, const uint16_t* x, const uint16_t* kernel, uint16_t* y,
                         const ParallelFor& parallel) {
  const Window2d& g = p.window;
  const int64_t pixels = g.out_h * g.out_w;
  const int64_t taps = g.groups * g.kernel_h * g.kernel_w;
  std::array<half_chunks::Stream, 3> streams{half_chunks::Stream{g.channels * g.height * g.width, x, nullptr},
                                             half_chunks::Stream{taps * pixels, kernel, nullptr},
                                             half_chunks::Stream{g.channels * pixels, nullptr, y}};
  half_chunks::InChunks(g.batch, streams, parallel, [&](int64_t images) {
    Involution2dParams chunk = p;
    chunk.window.batch = images;
    Involution2dCpu(chunk, streams[0].scratch.data(), streams[1].scratch.data(), streams[2].scratch.data(), parallel);
  });
}

}  // namespace holocron::kernels
