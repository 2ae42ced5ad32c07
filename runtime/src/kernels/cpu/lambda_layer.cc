// Lambda layer (LambdaNetworks, https://openreview.net/forum?id=xTJEN-ggl1b) on the CPU. With M = H * W positions:
//   Ks = softmax over m of the keys (N, K, U, M),
//   content lambda   Lc[n, k, v]    = sum_{u, m} Ks[n, k, u, m] * V[n, v, u, m],
//   position lambda  Lp[n, k, v, p] = sum_{u, i, j} R[k, u, 0, i, j] * V[n, v, u, p + (i, j) - r // 2]   (local)
//                                   = sum_{u, m} E[p, m, k, u] * V[n, v, u, m]                        (global),
//   Y[n, h * V + v, p] = sum_k Q[n, h * K + k, p] * (Lc[n, k, v] + Lp[n, k, v, p]).
//
// Step 1 computes Lc, one task per (n, k) with one softmax row of scratch. Step 2 never stores Lp:
// - local, queries first where that needs far fewer multiply-adds (QueriesFirst): a task owns (n, a run of positions
//   p); per p it takes A[h, u, tap] = sum_k Q[n, h, k, p] R[k, u, tap], then Y = Q . Lc + sum_taps A * V over V
//   transposed, the taps clipped to the image;
// - local, else: a task owns (n, v, a block of rows); it copies the rows of V[n, v] it reads into a zero-padded
//   scratch, then per vector of W pixels and block of KB keys accumulates Lc + Lp in registers (starting from Lc) and
//   applies the queries of every head at once; or, for images narrow against the vector width, the same sums along
//   the values (AlongValues);
// - global: a task owns (n, a run of positions p); per p it computes the K x V matrix Lc + Lp[., ., p] with a
//   register-tiled product of E[p] (M x K, read once from memory) and V transposed, then applies the queries.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/launch.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/half_chunks.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd.h"

namespace holocron::kernels {
namespace {

using simd::Vec;

constexpr int64_t kPositionsPerTask = 8;  // the global and the along-the-values local step

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }

struct LambdaShape {
  int64_t n, heads, keys, intra, values, height, width, positions;  // N, heads, K, U, V, H, W, M

  explicit LambdaShape(const LambdaParams& p)
      : n(p.batch),
        heads(p.heads),
        keys(p.dim_k),
        intra(p.dim_u),
        values(p.dim_v),
        height(p.height),
        width(p.width),
        positions(p.height * p.width) {}
};

// ---- step 1: content lambda ---------------------------------------------------------------------------------------

template <int W>
HOLOCRON_INLINE float Dot(const float* a, const float* b, int64_t count) {
  Vec<W> acc0 = simd::Zero<W>(), acc1 = simd::Zero<W>();
  int64_t i = 0;
  for (; i + 2 * W <= count; i += 2 * W) {
    acc0 += simd::Load<W>(a + i) * simd::Load<W>(b + i);
    acc1 += simd::Load<W>(a + i + W) * simd::Load<W>(b + i + W);
  }
  float sum = simd::ReduceAdd<W>(acc0 + acc1);
  for (; i < count; ++i) sum += a[i] * b[i];
  return sum;
}

// Lc[k, :] of one image: softmax of each key row (k, u) into `row`, then dot products with the value rows.
template <int W>
HOLOCRON_INLINE void ContentRow(const LambdaShape& s, const float* keys, const float* values, int64_t k, float* row,
                                float* lc_row) {
  std::fill(lc_row, lc_row + s.values, 0.0f);
  for (int64_t u = 0; u < s.intra; ++u) {
    const float* key_row = keys + (k * s.intra + u) * s.positions;
    const float peak = *std::max_element(key_row, key_row + s.positions);
    float total = 0.0f;
    for (int64_t m = 0; m < s.positions; ++m) {
      row[m] = std::exp(key_row[m] - peak);
      total += row[m];
    }
    const float inv_total = 1.0f / total;
    for (int64_t m = 0; m < s.positions; ++m) row[m] *= inv_total;
    for (int64_t v = 0; v < s.values; ++v) {
      lc_row[v] += Dot<W>(row, values + (v * s.intra + u) * s.positions, s.positions);
    }
  }
}

// ---- step 2, local positional lambda ------------------------------------------------------------------------------

struct LocalTask {
  const LambdaShape* shape;
  const float* padded;   // [u][row][column] of V[n, v], zero-padded by r // 2
  int64_t padded_rows, padded_width;
  const float* kernel;   // R transposed: [(u, i, j)][k]
  int64_t r;
  const float* lc;       // Lc[n, 0, v]
  int64_t lc_stride;     // between keys
  const float* q;        // Q[n]
  float* y;              // Y[n, v] (stride V * M between heads)
  int64_t first_row, row_count;
};

// The taps (i, j) of an r x r window that add something at output row py and columns [px, px + columns): those that
// read inside the image for at least one of the columns, [i_begin, i_end) x [j_begin, j_end).
struct TapWindow {
  int64_t i_begin, i_end, j_begin, j_end;
};

TapWindow ClippedTaps(const LambdaShape& s, int64_t r, int64_t py, int64_t px, int64_t columns = 1) {
  const int64_t pad = r / 2;
  return {std::max<int64_t>(0, pad - py), std::min<int64_t>(r, s.height + pad - py),
          std::max<int64_t>(0, pad - (px + columns - 1)), std::min<int64_t>(r, s.width + pad - px)};
}

template <int W, int KB>
HOLOCRON_INLINE void LocalKeys(const LocalTask& t, int64_t k0, int64_t local_row, int64_t x, int64_t lanes) {
  const LambdaShape& s = *t.shape;
  Vec<W> acc[KB];
  for (int kk = 0; kk < KB; ++kk) acc[kk] = simd::Broadcast<W>(t.lc[(k0 + kk) * t.lc_stride]);
  const int64_t taps = t.r * t.r;
  // Taps that read only the zero padding add nothing: clip them (rows for the whole vector, columns for all lanes).
  const TapWindow window = ClippedTaps(s, t.r, t.first_row + local_row, x, lanes);
  for (int64_t u = 0; u < s.intra; ++u) {
    const float* plane = t.padded + (u * t.padded_rows + local_row) * t.padded_width + x;
    const float* weights = t.kernel + u * taps * s.keys + k0;
    for (int64_t i = window.i_begin; i < window.i_end; ++i) {
      for (int64_t j = window.j_begin; j < window.j_end; ++j) {
        const Vec<W> v = simd::Load<W>(plane + i * t.padded_width + j);
        const float* w = weights + (i * t.r + j) * s.keys;
        for (int kk = 0; kk < KB; ++kk) acc[kk] += simd::Broadcast<W>(w[kk]) * v;
      }
    }
  }
  const int64_t pixel = (t.first_row + local_row) * s.width + x;
  for (int64_t h = 0; h < s.heads; ++h) {
    float* out = t.y + h * s.values * s.positions + pixel;
    const float* q = t.q + (h * s.keys + k0) * s.positions + pixel;
    Vec<W> sum;
    if (k0 == 0) {
      sum = simd::Zero<W>();
    } else {
      sum = lanes == W ? simd::Load<W>(out) : simd::LoadPartial<W>(out, lanes);
    }
    for (int kk = 0; kk < KB; ++kk) {
      const Vec<W> qv =
          lanes == W ? simd::Load<W>(q + kk * s.positions) : simd::LoadPartial<W>(q + kk * s.positions, lanes);
      sum += qv * acc[kk];
    }
    if (lanes == W) {
      simd::Store<W>(out, sum);
    } else {
      simd::StorePartial<W>(out, sum, lanes);
    }
  }
}

template <int W, int KB>
HOLOCRON_INLINE void LocalKeysRemainder(const LocalTask& t, int64_t k0, int64_t local_row, int64_t x, int64_t lanes,
                                        int64_t remaining) {
  if constexpr (KB > 0) {
    if (remaining == KB) {
      LocalKeys<W, KB>(t, k0, local_row, x, lanes);
    } else {
      LocalKeysRemainder<W, KB - 1>(t, k0, local_row, x, lanes, remaining);
    }
  }
}

// Columns [x_begin, x_end) of the task's rows; a last partial vector only where x_end is the row's end.
template <int W, int KB>
HOLOCRON_INLINE void LocalRows(const LocalTask& t, int64_t x_begin, int64_t x_end) {
  const LambdaShape& s = *t.shape;
  for (int64_t r = 0; r < t.row_count; ++r) {
    for (int64_t x = x_begin; x < x_end; x += W) {
      const int64_t lanes = std::min<int64_t>(W, s.width - x);
      int64_t k = 0;
      for (; k + KB <= s.keys; k += KB) LocalKeys<W, KB>(t, k, r, x, lanes);
      if (k < s.keys) LocalKeysRemainder<W, KB - 1>(t, k, r, x, lanes, s.keys - k);
    }
  }
}

// ---- step 2, global positional lambda -----------------------------------------------------------------------------

// A task of the steps vectorised along the values (the global step, and the local one along the values): one image n
// and a run of positions, with V[n] transposed and a K x V lambda of scratch. The position source is E (global) or
// R transposed and r (local).
struct ValueTask {
  const LambdaShape* shape;
  const float* embedding;  // E (global)
  const float* kernel;     // R transposed: [(u, i, j)][k] (local)
  const float* taps;       // R as [k][u][tap], each row of taps padded with zeros to tap_stride (local, queries first)
  int64_t tap_stride;      // r * r rounded up to whole vectors (local, queries first)
  int64_t r;               // (local)
  const float* vt;         // V[n] transposed: [u][m][v], v padded to value_stride with zeros
  int64_t value_stride;    // V rounded up to whole vectors
  const float* lc;         // Lc[n]: [k][v]
  const float* q;          // Q[n]
  float* y;                // Y[n]
  float* lambda;           // scratch: [k][value_stride], or [h][u][tap_stride] (queries first)
  int64_t first, count;    // positions
};

// Y[h * V + v0 + lane, p] = lanes of `sum`, the lanes past V dropped.
template <int W>
HOLOCRON_INLINE void StoreValues(const LambdaShape& s, Vec<W> sum, float* y, int64_t h, int64_t v0, int64_t p) {
  float lanes[W];
  simd::Store<W>(lanes, sum);
  const int64_t valid = std::min<int64_t>(W, s.values - v0);
  for (int64_t v = 0; v < valid; ++v) y[(h * s.values + v0 + v) * s.positions + p] = lanes[v];
}

// Y[h * V + v, p] = sum_k Q[h * K + k, p] * lambda[k][v] for one position p, lambda's rows value_stride apart.
template <int W>
HOLOCRON_INLINE void ApplyQueries(const LambdaShape& s, const float* q, const float* lambda, int64_t value_stride,
                                  float* y, int64_t p) {
  for (int64_t h = 0; h < s.heads; ++h) {
    for (int64_t v0 = 0; v0 < value_stride; v0 += W) {
      Vec<W> sum = simd::Zero<W>();
      for (int64_t k = 0; k < s.keys; ++k) {
        const Vec<W> query = simd::Broadcast<W>(q[(h * s.keys + k) * s.positions + p]);
        sum += query * simd::Load<W>(lambda + k * value_stride + v0);
      }
      StoreValues<W>(s, sum, y, h, v0, p);
    }
  }
}

// lambda[k0 + kk][vector v0 + v] = Lc + sum_{m, u} E[p, m, k0 + kk, u] * Vt[u, m, v].
template <int W, int MR, int NV>
HOLOCRON_INLINE void GlobalMicroTile(const ValueTask& t, const float* e_p, int64_t k0, int64_t v0) {
  const LambdaShape& s = *t.shape;
  Vec<W> acc[MR][NV];
  for (int kk = 0; kk < MR; ++kk) {
    for (int v = 0; v < NV; ++v) acc[kk][v] = simd::Zero<W>();
  }
  const int64_t m_stride = s.keys * s.intra;
  for (int64_t u = 0; u < s.intra; ++u) {
    const float* e = e_p + k0 * s.intra + u;
    const float* vt = t.vt + u * s.positions * t.value_stride + v0;
    for (int64_t m = 0; m < s.positions; ++m) {
      Vec<W> x[NV];
      for (int v = 0; v < NV; ++v) x[v] = simd::Load<W>(vt + m * t.value_stride + v * W);
      const float* em = e + m * m_stride;
      for (int kk = 0; kk < MR; ++kk) {
        const Vec<W> b = simd::Broadcast<W>(em[kk * s.intra]);
        for (int v = 0; v < NV; ++v) acc[kk][v] += b * x[v];
      }
    }
  }
  for (int kk = 0; kk < MR; ++kk) {
    float* out = t.lambda + (k0 + kk) * t.value_stride + v0;
    const float* lc = t.lc + (k0 + kk) * t.value_stride + v0;
    for (int v = 0; v < NV; ++v) simd::Store<W>(out + v * W, acc[kk][v] + simd::Load<W>(lc + v * W));
  }
}

template <int W, int MR, int NV>
HOLOCRON_INLINE void GlobalRemainder(const ValueTask& t, const float* e_p, int64_t k0, int64_t v0,
                                     int64_t remaining) {
  if constexpr (MR > 0) {
    if (remaining == MR) {
      GlobalMicroTile<W, MR, NV>(t, e_p, k0, v0);
    } else {
      GlobalRemainder<W, MR - 1, NV>(t, e_p, k0, v0, remaining);
    }
  }
}

template <int W, int MR, int NV>
HOLOCRON_INLINE void GlobalKeyRows(const ValueTask& t, const float* e_p, int64_t v0) {
  const int64_t keys = t.shape->keys;
  int64_t k = 0;
  for (; k + MR <= keys; k += MR) GlobalMicroTile<W, MR, NV>(t, e_p, k, v0);
  if (k < keys) GlobalRemainder<W, MR - 1, NV>(t, e_p, k, v0, keys - k);
}

template <int W, int MR>
HOLOCRON_INLINE void GlobalPositions(const ValueTask& t) {
  const LambdaShape& s = *t.shape;
  const int64_t vectors = t.value_stride / W;
  for (int64_t p = t.first; p < t.first + t.count; ++p) {
    const float* e_p = t.embedding + p * s.positions * s.keys * s.intra;
    int64_t vec = 0;
    for (; vec + 2 <= vectors; vec += 2) GlobalKeyRows<W, MR, 2>(t, e_p, vec * W);
    if (vec < vectors) GlobalKeyRows<W, MR, 1>(t, e_p, vec * W);
    ApplyQueries<W>(s, t.q, t.lambda, t.value_stride, t.y, p);
  }
}

// ---- step 2, local positional lambda along the values ---------------------------------------------------------------
// For images narrow against the vector width and many values (LambdaResNet's later stages): vectors run along v, over
// V transposed to [u][m][v] as in the global step, and each position's taps are clipped to the image exactly, so no
// lane computes padding; the same sums in the same order (Lc, then u, i, j) as the pixel-vector path.

// lambda[k0 + kk][vector v0 + v] = Lc + sum_{u, i, j} R[k0 + kk, u, i, j] * Vt[u, position + (i, j) - r // 2, v].
template <int W, int KB, int NV>
HOLOCRON_INLINE void LocalValueTile(const ValueTask& t, int64_t py, int64_t px, int64_t k0, int64_t v0) {
  const LambdaShape& s = *t.shape;
  Vec<W> acc[KB][NV];
  for (int kk = 0; kk < KB; ++kk) {
    for (int v = 0; v < NV; ++v) acc[kk][v] = simd::Load<W>(t.lc + (k0 + kk) * t.value_stride + v0 + v * W);
  }
  const int64_t pad = t.r / 2, taps = t.r * t.r;
  const TapWindow window = ClippedTaps(s, t.r, py, px);
  for (int64_t u = 0; u < s.intra; ++u) {
    const float* plane = t.vt + u * s.positions * t.value_stride + v0;
    const float* weights = t.kernel + u * taps * s.keys + k0;
    for (int64_t i = window.i_begin; i < window.i_end; ++i) {
      const int64_t m_row = (py + i - pad) * s.width + px - pad;  // + j: the position tap (i, j) reads
      for (int64_t j = window.j_begin; j < window.j_end; ++j) {
        const float* value = plane + (m_row + j) * t.value_stride;
        Vec<W> x[NV];
        for (int v = 0; v < NV; ++v) x[v] = simd::Load<W>(value + v * W);
        const float* w = weights + (i * t.r + j) * s.keys;
        for (int kk = 0; kk < KB; ++kk) {
          const Vec<W> b = simd::Broadcast<W>(w[kk]);
          for (int v = 0; v < NV; ++v) acc[kk][v] += b * x[v];
        }
      }
    }
  }
  for (int kk = 0; kk < KB; ++kk) {
    float* out = t.lambda + (k0 + kk) * t.value_stride + v0;
    for (int v = 0; v < NV; ++v) simd::Store<W>(out + v * W, acc[kk][v]);
  }
}

// Keys [k0, k0 + remaining) with remaining < KB, one tile.
template <int W, int KB, int NV>
HOLOCRON_INLINE void LocalValueKeyRemainder(const ValueTask& t, int64_t py, int64_t px, int64_t k0, int64_t v0,
                                            int64_t remaining) {
  if constexpr (KB > 0) {
    if (remaining == KB) {
      LocalValueTile<W, KB, NV>(t, py, px, k0, v0);
    } else {
      LocalValueKeyRemainder<W, KB - 1, NV>(t, py, px, k0, v0, remaining);
    }
  }
}

template <int W, int KB, int NV>
HOLOCRON_INLINE void LocalValueKeys(const ValueTask& t, int64_t py, int64_t px, int64_t v0) {
  const int64_t keys = t.shape->keys;
  int64_t k = 0;
  for (; k + KB <= keys; k += KB) LocalValueTile<W, KB, NV>(t, py, px, k, v0);
  if (k < keys) LocalValueKeyRemainder<W, KB - 1, NV>(t, py, px, k, v0, keys - k);
}

// Value vectors [vec, vectors) in tiles of NV, then of fewer.
template <int W, int KB, int NV>
HOLOCRON_INLINE void LocalValueVectors(const ValueTask& t, int64_t py, int64_t px, int64_t vec, int64_t vectors) {
  if constexpr (NV > 0) {
    for (; vec + NV <= vectors; vec += NV) LocalValueKeys<W, KB, NV>(t, py, px, vec * W);
    if (vec < vectors) LocalValueVectors<W, KB, NV - 1>(t, py, px, vec, vectors);
  }
}

template <int W, int KB, int NV>
HOLOCRON_INLINE void LocalValuePositions(const ValueTask& t) {
  const LambdaShape& s = *t.shape;
  for (int64_t p = t.first; p < t.first + t.count; ++p) {
    LocalValueVectors<W, KB, NV>(t, p / s.width, p % s.width, 0, t.value_stride / W);
    ApplyQueries<W>(s, t.q, t.lambda, t.value_stride, t.y, p);
  }
}

// ---- step 2, local positional lambda with the queries first ------------------------------------------------------
// Y[h, v, p] = sum_k Q[h, k, p] Lc[k, v] + sum_{u, taps} A[h, u, tap] Vt[u, p + tap - r // 2, v], with
// A[h, u, tap] = sum_k Q[h, k, p] R[k, u, tap]: the same products summed in another order, which takes
// heads * (K + V) multiply-adds per tap and position where forming the K x V lambda first takes K * V
// (LambdaResNet: 4 heads, K = 16, V = 16 to 128: 0.5 to 0.28 of them). Taps outside the image are skipped exactly.

// A[h][u][c, c + TB W) = sum_k Q[h, k, p] R[k, u, c, c + TB W): `q` at Q[h, 0, p], `taps` at R[0, u, 0], `out` at
// A[h, u, 0], R's rows `rows` apart.
template <int W, int TB>
HOLOCRON_INLINE void QueryTapTile(const LambdaShape& s, const float* q, const float* taps, int64_t rows, int64_t c,
                                  float* out) {
  Vec<W> acc[TB];
  for (int b = 0; b < TB; ++b) acc[b] = simd::Zero<W>();
  for (int64_t k = 0; k < s.keys; ++k) {
    const Vec<W> query = simd::Broadcast<W>(q[k * s.positions]);
    const float* row = taps + k * rows + c;
    for (int b = 0; b < TB; ++b) acc[b] += query * simd::Load<W>(row + b * W);
  }
  for (int b = 0; b < TB; ++b) simd::Store<W>(out + c + b * W, acc[b]);
}

// A[h][u][tap] of position p for the taps of the rows of R that fall inside the image, [i_begin r, i_end r) rounded
// out to whole vectors (the padded taps of R are zeros): tiles of 4 vectors of taps, then single vectors.
template <int W>
HOLOCRON_INLINE void QueryTaps(const ValueTask& t, int64_t p) {
  const LambdaShape& s = *t.shape;
  const TapWindow window = ClippedTaps(s, t.r, p / s.width, p % s.width);
  const int64_t c_begin = window.i_begin * t.r / W * W, c_end = RoundUp(window.i_end * t.r, W);
  const int64_t rows = s.intra * t.tap_stride;
  for (int64_t h = 0; h < s.heads; ++h) {
    const float* q = t.q + h * s.keys * s.positions + p;
    for (int64_t u = 0; u < s.intra; ++u) {
      float* out = t.lambda + h * rows + u * t.tap_stride;
      const float* taps = t.taps + u * t.tap_stride;
      int64_t c = c_begin;
      for (; c + 4 * W <= c_end; c += 4 * W) QueryTapTile<W, 4>(s, q, taps, rows, c, out);
      for (; c < c_end; c += W) QueryTapTile<W, 1>(s, q, taps, rows, c, out);
    }
  }
}

// One tap: acc[hh][v] += A[h0 + hh, u, tap] * Vt[u, m, vector v].
template <int W, int HB, int NV>
HOLOCRON_INLINE void QueryFirstTap(Vec<W> (&acc)[HB][NV], const float* value, const float* a, int64_t head_stride) {
  Vec<W> x[NV];
  for (int v = 0; v < NV; ++v) x[v] = simd::Load<W>(value + v * W);
  for (int hh = 0; hh < HB; ++hh) {
    const Vec<W> weight = simd::Broadcast<W>(a[hh * head_stride]);
    for (int v = 0; v < NV; ++v) acc[hh][v] += weight * x[v];
  }
}

// Y[h0 + hh, vector v0 + v, p] for HB heads and NV value vectors: the content term, then the valid taps, in SPLIT
// interleaved sets of sums where HB x NV alone are too few to hide the multiply-add's latency.
template <int W, int HB, int NV>
HOLOCRON_INLINE void QueryFirstTile(const ValueTask& t, int64_t py, int64_t px, int64_t h0, int64_t v0) {
  constexpr int SPLIT = HB * NV >= 8 ? 1 : (HB * NV >= 4 ? 2 : 4);
  const LambdaShape& s = *t.shape;
  const int64_t p = py * s.width + px;
  Vec<W> acc[SPLIT][HB][NV];
  for (int c = 0; c < SPLIT; ++c) {
    for (int hh = 0; hh < HB; ++hh) {
      for (int v = 0; v < NV; ++v) acc[c][hh][v] = simd::Zero<W>();
    }
  }
  for (int64_t k = 0; k < s.keys; ++k) {
    Vec<W> lc[NV];
    for (int v = 0; v < NV; ++v) lc[v] = simd::Load<W>(t.lc + k * t.value_stride + v0 + v * W);
    for (int hh = 0; hh < HB; ++hh) {
      const Vec<W> query = simd::Broadcast<W>(t.q[((h0 + hh) * s.keys + k) * s.positions + p]);
      for (int v = 0; v < NV; ++v) acc[0][hh][v] += query * lc[v];
    }
  }
  const int64_t pad = t.r / 2;
  const TapWindow window = ClippedTaps(s, t.r, py, px);
  const int64_t j_end = window.j_end;
  const int64_t head_stride = s.intra * t.tap_stride;
  for (int64_t u = 0; u < s.intra; ++u) {
    const float* plane = t.vt + u * s.positions * t.value_stride + v0;
    const float* a = t.lambda + h0 * head_stride + u * t.tap_stride;
    for (int64_t i = window.i_begin; i < window.i_end; ++i) {
      const int64_t m_row = (py + i - pad) * s.width + px - pad;  // + j: the position tap (i, j) reads
      int64_t j = window.j_begin;
      for (; j + SPLIT <= j_end; j += SPLIT) {
        for (int c = 0; c < SPLIT; ++c) {
          QueryFirstTap<W, HB, NV>(acc[c], plane + (m_row + j + c) * t.value_stride, a + i * t.r + j + c, head_stride);
        }
      }
      for (; j < j_end; ++j) {
        QueryFirstTap<W, HB, NV>(acc[0], plane + (m_row + j) * t.value_stride, a + i * t.r + j, head_stride);
      }
    }
  }
  for (int c = 1; c < SPLIT; ++c) {
    for (int hh = 0; hh < HB; ++hh) {
      for (int v = 0; v < NV; ++v) acc[0][hh][v] += acc[c][hh][v];
    }
  }
  for (int hh = 0; hh < HB; ++hh) {
    for (int v = 0; v < NV; ++v) StoreValues<W>(s, acc[0][hh][v], t.y, h0 + hh, v0 + v * W, p);
  }
}

// Heads [h0, heads) with HB a tile, then fewer.
template <int W, int HB, int NV>
HOLOCRON_INLINE void QueryFirstHeads(const ValueTask& t, int64_t py, int64_t px, int64_t h0, int64_t v0) {
  if constexpr (HB > 0) {
    const int64_t heads = t.shape->heads;
    for (; h0 + HB <= heads; h0 += HB) QueryFirstTile<W, HB, NV>(t, py, px, h0, v0);
    if (h0 < heads) QueryFirstHeads<W, HB - 1, NV>(t, py, px, h0, v0);
  }
}

// Value vectors [vec, vectors) in tiles of NV, then of fewer.
template <int W, int HB, int NV>
HOLOCRON_INLINE void QueryFirstVectors(const ValueTask& t, int64_t py, int64_t px, int64_t vec, int64_t vectors) {
  if constexpr (NV > 0) {
    for (; vec + NV <= vectors; vec += NV) QueryFirstHeads<W, HB, NV>(t, py, px, 0, vec * W);
    if (vec < vectors) QueryFirstVectors<W, HB, NV - 1>(t, py, px, vec, vectors);
  }
}

template <int W, int HB, int NV>
HOLOCRON_INLINE void QueryFirstPositions(const ValueTask& t) {
  const LambdaShape& s = *t.shape;
  for (int64_t p = t.first; p < t.first + t.count; ++p) {
    QueryTaps<W>(t, p);
    QueryFirstVectors<W, HB, NV>(t, p / s.width, p % s.width, 0, t.value_stride / W);
  }
}

// ---- per instruction set ------------------------------------------------------------------------------------------

struct LambdaVariant {
  void (*content)(const LambdaShape&, const float*, const float*, int64_t, float*, float*);
  void (*local)(const LocalTask&);
  void (*global)(const ValueTask&);
  void (*local_values)(const ValueTask&);
  void (*local_queries)(const ValueTask&);
  int64_t lanes;
};

void ContentBaseline(const LambdaShape& s, const float* k, const float* v, int64_t row, float* tmp, float* out) {
  ContentRow<4>(s, k, v, row, tmp, out);
}
void LocalBaseline(const LocalTask& t) { LocalRows<4, 8>(t, 0, t.shape->width); }
void GlobalBaseline(const ValueTask& t) { GlobalPositions<4, 4>(t); }
void LocalValuesBaseline(const ValueTask& t) { LocalValuePositions<4, 6, 2>(t); }
void LocalQueriesBaseline(const ValueTask& t) { QueryFirstPositions<4, 4, 2>(t); }
#if HOLOCRON_X86
HOLOCRON_TARGET_AVX2 void ContentAvx2(const LambdaShape& s, const float* k, const float* v, int64_t row, float* tmp,
                                      float* out) {
  ContentRow<8>(s, k, v, row, tmp, out);
}
HOLOCRON_TARGET_AVX2 void LocalAvx2(const LocalTask& t) { LocalRows<8, 8>(t, 0, t.shape->width); }
HOLOCRON_TARGET_AVX2 void GlobalAvx2(const ValueTask& t) { GlobalPositions<8, 6>(t); }
HOLOCRON_TARGET_AVX2 void LocalValuesAvx2(const ValueTask& t) { LocalValuePositions<8, 6, 2>(t); }
HOLOCRON_TARGET_AVX2 void LocalQueriesAvx2(const ValueTask& t) { QueryFirstPositions<8, 4, 2>(t); }
HOLOCRON_TARGET_AVX512 void ContentAvx512(const LambdaShape& s, const float* k, const float* v, int64_t row,
                                          float* tmp, float* out) {
  ContentRow<16>(s, k, v, row, tmp, out);
}
// Whole 16-lane vectors, then the rest of each row in 8-lane ones: an 8-wide image (LambdaResNet's last stage) ran
// 3.5x slower on half-empty 16-lane vectors than on AVX2's full 8-lane ones.
HOLOCRON_TARGET_AVX512 void LocalAvx512(const LocalTask& t) {
  const int64_t split = t.shape->width / 16 * 16;
  LocalRows<16, 8>(t, 0, split);
  if (split < t.shape->width) LocalRows<8, 8>(t, split, t.shape->width);
}
// One vector of values (V <= 16): all 16 keys in one tile, so each position reads V transposed once, not twice (8 keys
// a tile left AVX-512 6% behind AVX2's 6 x 2 tiles at V = 16).
HOLOCRON_TARGET_AVX512 void GlobalAvx512(const ValueTask& t) {
  if (t.value_stride == 16) {
    GlobalPositions<16, 16>(t);
  } else {
    GlobalPositions<16, 8>(t);
  }
}
// 16 accumulators whatever the count of value vectors: 4 keys x 4 vectors, 8 x 2 or 16 x 1.
HOLOCRON_TARGET_AVX512 void LocalValuesAvx512(const ValueTask& t) {
  const int64_t vectors = t.value_stride / 16;
  if (vectors == 1) {
    LocalValuePositions<16, 16, 1>(t);
  } else if (vectors == 2) {
    LocalValuePositions<16, 8, 2>(t);
  } else {
    LocalValuePositions<16, 4, 4>(t);
  }
}
HOLOCRON_TARGET_AVX512 void LocalQueriesAvx512(const ValueTask& t) { QueryFirstPositions<16, 4, 4>(t); }
#endif

LambdaVariant SelectVariant() {
  switch (ActiveIsa()) {
#if HOLOCRON_X86
    case Isa::kAvx512:
      return {&ContentAvx512, &LocalAvx512, &GlobalAvx512, &LocalValuesAvx512, &LocalQueriesAvx512, 16};
    case Isa::kAvx2:
      return {&ContentAvx2, &LocalAvx2, &GlobalAvx2, &LocalValuesAvx2, &LocalQueriesAvx2, 8};
#endif
    default:
      return {&ContentBaseline, &LocalBaseline, &GlobalBaseline, &LocalValuesBaseline, &LocalQueriesBaseline, 4};
  }
}

// Whether the local step runs along the values (RunLocalAlongValues) rather than along the pixels of a row: with a
// whole vector of values at least, and two of them or an image narrower than two vectors. Measured on one Zen 4 core
// at LambdaResNet's shapes (r = 23), along the values took 0.42-0.45 of the time at 14 x 14 (V = 64, 128), 0.61-0.73
// at 28 x 28 (V = 32, 64), 0.91 at 56 x 56 with V = 32, and 1.05 (a tie) at 56 x 56 with V = 16, which stays along
// the pixels; the results are the same bit for bit.
bool AlongValues(const LambdaShape& s, int64_t lanes) {
  return s.values >= lanes && (s.values >= 2 * lanes || s.width < 2 * lanes);
}

// Whether the local step takes the queries first (QueryFirstPositions): where that order needs at most 0.4 of the
// multiply-adds per tap and position, heads * (K + V) against K * V with V rounded up to whole vectors (its A step
// also covers the taps of the clipped rows' columns outside the image, and its tiles load more per multiply-add).
// Measured on one Zen 4 core, against the step chosen before: 0.48-0.77 of the time at ratios 0.28-0.38 (4 heads,
// K = 16, V = 32 to 128, r = 5 to 23, 7 x 7 to 56 x 56, AVX-512 and AVX2; 0.91-0.99 at 7 x 7, and at 28 x 28 with
// AVX2), 0.82-1.26 at 0.5 and 0.75 (V = 16 and 8). The rule implies heads < 0.4 K, so a task's A scratch (heads * U
// * r * r floats) stays under 0.4 of R's size.
bool QueriesFirst(const LambdaShape& s, int64_t value_stride) {
  return 5 * s.heads * (s.keys + value_stride) <= 2 * s.keys * value_stride;
}

// V transposed to [n][u][m][v] (v padded with zeros to value_stride), so that a step vectorised along v reads whole
// value vectors.
std::vector<float> TransposeValues(const LambdaShape& s, const float* values, int64_t value_stride,
                                   const ParallelFor& parallel) {
  std::vector<float> vt(static_cast<size_t>(s.n * s.intra * s.positions * value_stride), 0.0f);
  parallel(static_cast<size_t>(s.n * s.intra), [&](size_t index) {
    const int64_t nu = static_cast<int64_t>(index);
    const int64_t n = nu / s.intra;
    const int64_t u = nu % s.intra;
    float* dst = vt.data() + nu * s.positions * value_stride;
    for (int64_t v = 0; v < s.values; ++v) {
      const float* src = values + ((n * s.values + v) * s.intra + u) * s.positions;
      for (int64_t m = 0; m < s.positions; ++m) dst[m * value_stride + v] = src[m];
    }
  });
  return vt;
}

// Runs `step` over tasks of (image, run of positions); `base` holds the position source, the per-image pointers are
// set here.
void RunAlongValues(const LambdaShape& s, const ValueTask& base, void (*step)(const ValueTask&), const float* lc,
                    const float* q, const float* values, float* y, const ParallelFor& parallel) {
  const int64_t value_stride = base.value_stride;
  const std::vector<float> vt = TransposeValues(s, values, value_stride, parallel);
  const int64_t runs = CeilDiv(s.positions, kPositionsPerTask);
  TaskFailures failures;
  const auto task = [&](size_t index) {
    const int64_t id = static_cast<int64_t>(index);
    const int64_t n = id / runs;
    const int64_t first = (id % runs) * kPositionsPerTask;
    Scratch scratch(static_cast<size_t>(std::max(s.keys * value_stride, s.heads * s.intra * base.tap_stride)));
    if (scratch.data() == nullptr) {
      failures.Record();
      return;
    }
    ValueTask t = base;
    t.shape = &s;
    t.vt = vt.data() + n * s.intra * s.positions * value_stride;
    t.lc = lc + n * s.keys * value_stride;
    t.q = q + n * s.heads * s.keys * s.positions;
    t.y = y + n * s.heads * s.values * s.positions;
    t.lambda = scratch.data();
    t.first = first;
    t.count = std::min(kPositionsPerTask, s.positions - first);
    step(t);
  };
  parallel(static_cast<size_t>(s.n * runs), task);
  failures.ThrowIfAny();
}

void RunLocal(const LambdaShape& s, const LambdaVariant& variant, const float* lc, int64_t lc_stride,
              const float* q, const float* values, const float* position, int64_t r, float* y,
              const ParallelFor& parallel) {
  const int64_t taps = r * r;
  if (QueriesFirst(s, lc_stride)) {
    ValueTask base{};
    base.r = r;
    base.value_stride = lc_stride;
    base.tap_stride = RoundUp(taps, variant.lanes);
    std::vector<float> rows(static_cast<size_t>(s.keys * s.intra * base.tap_stride), 0.0f);  // R, rows padded
    for (int64_t ku = 0; ku < s.keys * s.intra; ++ku) {
      std::copy(position + ku * taps, position + (ku + 1) * taps, rows.begin() + ku * base.tap_stride);
    }
    base.taps = rows.data();
    RunAlongValues(s, base, variant.local_queries, lc, q, values, y, parallel);
    return;
  }
  // R (K, U, 1, r, r) transposed to [(u, i, j)][k]: the KB keys of one tap are adjacent.
  std::vector<float> kernel(static_cast<size_t>(s.intra * taps * s.keys));
  for (int64_t k = 0; k < s.keys; ++k) {
    for (int64_t u = 0; u < s.intra; ++u) {
      for (int64_t tap = 0; tap < taps; ++tap) {
        kernel[(u * taps + tap) * s.keys + k] = position[(k * s.intra + u) * taps + tap];
      }
    }
  }
  if (AlongValues(s, variant.lanes)) {
    ValueTask base{};
    base.kernel = kernel.data();
    base.r = r;
    base.value_stride = lc_stride;
    RunAlongValues(s, base, variant.local_values, lc, q, values, y, parallel);
    return;
  }
  const int64_t pad = r / 2;
  const int64_t padded_width = RoundUp(s.width, variant.lanes) + r - 1;
  const int64_t base_tasks = s.n * s.values;
  const int64_t block = CeilDiv(s.height, std::clamp<int64_t>(CeilDiv(TaskCountHint(), base_tasks), 1, s.height));
  const int64_t blocks = CeilDiv(s.height, block);

  TaskFailures failures;
  const auto task = [&](size_t index) {
    const int64_t id = static_cast<int64_t>(index);
    const int64_t block_id = id % blocks;
    const int64_t v = (id / blocks) % s.values;
    const int64_t n = id / (blocks * s.values);
    const int64_t first_row = block_id * block;
    const int64_t row_count = std::min(block, s.height - first_row);
    const int64_t padded_rows = row_count + r - 1;
    Scratch scratch(static_cast<size_t>(s.intra * padded_rows * padded_width));
    if (scratch.data() == nullptr) {
      failures.Record();
      return;
    }
    for (int64_t u = 0; u < s.intra; ++u) {
      const float* plane = values + ((n * s.values + v) * s.intra + u) * s.positions;
      for (int64_t row = 0; row < padded_rows; ++row) {
        float* dst = scratch.data() + (u * padded_rows + row) * padded_width;
        std::fill(dst, dst + padded_width, 0.0f);
        const int64_t iy = first_row + row - pad;
        if (iy >= 0 && iy < s.height) std::copy(plane + iy * s.width, plane + (iy + 1) * s.width, dst + pad);
      }
    }
    LocalTask t;
    t.shape = &s;
    t.padded = scratch.data();
    t.padded_rows = padded_rows;
    t.padded_width = padded_width;
    t.kernel = kernel.data();
    t.r = r;
    t.lc = lc + n * s.keys * lc_stride + v;
    t.lc_stride = lc_stride;
    t.q = q + n * s.heads * s.keys * s.positions;
    t.y = y + (n * s.heads * s.values + v) * s.positions;
    t.first_row = first_row;
    t.row_count = row_count;
    variant.local(t);
  };
  parallel(static_cast<size_t>(s.n * s.values * blocks), task);
  failures.ThrowIfAny();
}

void RunGlobal(const LambdaShape& s, const LambdaVariant& variant, const float* lc, int64_t value_stride,
               const float* q, const float* values, const float* position, float* y, const ParallelFor& parallel) {
  ValueTask base{};
  base.embedding = position;
  base.value_stride = value_stride;
  RunAlongValues(s, base, variant.global, lc, q, values, y, parallel);
}

}  // namespace

void LambdaCpu(const LambdaParams& p, const float* q, const float* keys, const float* values, const float* position,
               float* y, const ParallelFor& parallel) {
  const LambdaShape s(p);
  if (s.n == 0 || s.positions == 0 || s.heads == 0 || s.values == 0) return;
  const LambdaVariant variant = SelectVariant();
  // Lc rows padded to whole vectors (zeros past V) so the global step can load them as vectors.
  const int64_t value_stride = RoundUp(s.values, variant.lanes);
  std::vector<float> lc(static_cast<size_t>(s.n * s.keys * value_stride), 0.0f);
  TaskFailures failures;
  parallel(static_cast<size_t>(s.n * s.keys), [&](size_t index) {
    const int64_t nk = static_cast<int64_t>(index);
    const int64_t n = nk / s.keys;
    const int64_t k = nk % s.keys;
    Scratch row(static_cast<size_t>(s.positions));
    if (row.data() == nullptr) {
      failures.Record();
      return;
    }
    variant.content(s, keys + n * s.keys * s.intra * s.positions, values + n * s.values * s.intra * s.positions, k,
                    row.data(), lc.data() + nk * value_stride);
  });
  failures.ThrowIfAny();
  if (p.local) {
    RunLocal(s, variant, lc.data(), value_stride, q, values, position, p.r, y, parallel);
  } else {
    RunGlobal(s, variant, lc.data(), value_stride, q, values, position, y, parallel);
  }
}

// float16: through float32 scratch (kernels/half_chunks.h).
void LambdaCpuHalf(const LambdaParams& p, const uint16_t* q, const uint16_t* keys, const uint16_t* values,
                   const uint16_t* position, uint16_t* y, const ParallelFor& parallel) {
  const int64_t pixels = p.height * p.width;
  const int64_t position_size = p.local ? p.dim_k * p.dim_u * p.r * p.r : pixels * pixels * p.dim_k * p.dim_u;
  const std::vector<float> position_float = half_chunks::ConvertAll(position, position_size, parallel);
  std::array<half_chunks::Stream, 4> streams{half_chunks::Stream{p.heads * p.dim_k * pixels, q, nullptr},
                                             half_chunks::Stream{p.dim_k * p.dim_u * pixels, keys, nullptr},
                                             half_chunks::Stream{p.dim_v * p.dim_u * pixels, values, nullptr},
                                             half_chunks::Stream{p.heads * p.dim_v * pixels, nullptr, y}};
  half_chunks::InChunks(p.batch, streams, parallel, [&](int64_t images) {
    LambdaParams chunk = p;
    chunk.batch = images;
    LambdaCpu(chunk, streams[0].scratch.data(), streams[1].scratch.data(), streams[2].scratch.data(),
              position_float.data(), streams[3].scratch.data(), parallel);
  });
}

}  // namespace holocron::kernels
