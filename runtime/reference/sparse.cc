#include "runtime/reference/sparse.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "runtime/reference/parallel.h"

namespace slimserve::runtime::reference {
namespace {

constexpr int64_t kTile = 128;  // pixels per row of the tile: up to eight AVX-512 registers

// Rows [r0, r1) of one image x over pixels [s0, s0 + width), width <= 16 *
// kVectors, into y (row r0 at pixel s0; `stride` between rows), plus addend
// (laid out as y) if not null. Only Relu and Clip are applied here (lo,
// hi); the caller applies other activations.
template <int kVectors>
__attribute__((target("avx512f"))) void TileVectors(const SparseRows& w, const float* bias, const float* addend,
                                                     float lo, float hi, const float* x, int64_t spatial, int64_t s0,
                                                     int64_t width, int64_t r0, int64_t r1, float* y, int64_t stride) {
  __mmask16 mask[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    const int64_t n = std::clamp<int64_t>(width - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((1u << n) - 1);
  }
  const bool full = width == 16 * kVectors;
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (int64_t r = r0; r < r1; ++r) {
    const __m512 b = _mm512_set1_ps(bias == nullptr ? 0.0f : bias[r]);
    __m512 acc[kVectors];
    for (int i = 0; i < kVectors; ++i) {
      acc[i] = addend == nullptr ? b : _mm512_add_ps(b, _mm512_maskz_loadu_ps(mask[i], addend + (r - r0) * stride + 16 * i));
    }
    for (int64_t k = w.start[r]; k < w.start[r + 1]; ++k) {
      const __m512 v = _mm512_set1_ps(w.value[k]);
      const float* row = x + w.index[k] * spatial + s0;
      if (full) {
        for (int i = 0; i < kVectors; ++i) acc[i] = _mm512_fmadd_ps(v, _mm512_loadu_ps(row + 16 * i), acc[i]);
      } else {
        for (int i = 0; i < kVectors; ++i) acc[i] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(mask[i], row + 16 * i), acc[i]);
      }
    }
    float* out = y + (r - r0) * stride;
    for (int i = 0; i < kVectors; ++i) {
      _mm512_mask_storeu_ps(out + 16 * i, mask[i], _mm512_min_ps(_mm512_max_ps(acc[i], vlo), vhi));
    }
  }
}

// TileVectors with as many registers as `width` (<= kTile) needs.
void TileAvx512(const SparseRows& w, const float* bias, const float* addend, float lo, float hi, const float* x,
                int64_t spatial, int64_t s0, int64_t width, int64_t r0, int64_t r1, float* y, int64_t stride) {
  using Tile = decltype(&TileVectors<1>);
  static constexpr Tile kTiles[] = {TileVectors<1>, TileVectors<2>, TileVectors<3>, TileVectors<4>,
                                    TileVectors<5>, TileVectors<6>, TileVectors<7>, TileVectors<8>};
  kTiles[(width + 15) / 16 - 1](w, bias, addend, lo, hi, x, spatial, s0, width, r0, r1, y, stride);
}

// 16 x 16 floats: row i of the result is column i of `v`.
__attribute__((target("avx512f"))) void Transpose16(__m512 v[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // pairs of rows: 2 x 2 blocks of single floats
    t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 4 x 4 blocks: pairs of floats
    for (int j = 0; j < 2; ++j) {
      const __m512d a = _mm512_castps_pd(t[i + j]), b = _mm512_castps_pd(t[i + 2 + j]);
      v[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      v[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
  }
  for (int i = 0; i < 16; i += 8) {  // 8 x 8 blocks: 128-bit lanes
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_shuffle_f32x4(v[i + j], v[i + 4 + j], 0x88);
      t[i + 4 + j] = _mm512_shuffle_f32x4(v[i + j], v[i + 4 + j], 0xdd);
    }
  }
  for (int j = 0; j < 8; ++j) {  // 16 x 16: 256-bit halves
    v[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    v[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
}

// Row blocks [b0, b1) of 16 rows of one image over pixels [s0, s0 + width),
// width <= kTile, into y and from addend, where the 16 rows of block b at
// pixel s are contiguous at b * block_stride + s * pixel_stride: computed
// as rows, then turned 16 x 16 at a time.
__attribute__((target("avx512f"))) void BlockAvx512(const SparseRows& w, const float* bias, const float* addend,
                                                     float lo, float hi, const float* x, float* y, int64_t spatial,
                                                     int64_t block_stride, int64_t pixel_stride, int64_t s0,
                                                     int64_t width, int64_t b0, int64_t b1) {
  alignas(64) float rows[16][kTile];
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (int64_t b = b0; b < b1; ++b) {
    TileAvx512(w, nullptr, nullptr, -INFINITY, INFINITY, x, spatial, s0, width, b * 16, b * 16 + 16, &rows[0][0], kTile);
    const __m512 vb = bias == nullptr ? _mm512_setzero_ps() : _mm512_loadu_ps(bias + b * 16);
    for (int64_t p0 = 0; p0 < width; p0 += 16) {
      __m512 v[16];
      for (int i = 0; i < 16; ++i) v[i] = _mm512_load_ps(&rows[i][p0]);
      Transpose16(v);  // v[p]: the 16 rows at pixel s0 + p0 + p
      for (int64_t p = 0; p < std::min<int64_t>(16, width - p0); ++p) {
        const int64_t at = b * block_stride + (s0 + p0 + p) * pixel_stride;
        __m512 out = _mm512_add_ps(v[p], vb);
        if (addend != nullptr) out = _mm512_add_ps(out, _mm512_loadu_ps(addend + at));
        _mm512_storeu_ps(y + at, _mm512_min_ps(_mm512_max_ps(out, vlo), vhi));
      }
    }
  }
}

// Where element (channel c, pixel s) of an image of `channels` x `spatial`
// is in `layout`: c / 16 * block_stride + s * pixel_stride + c % 16 for the
// channel-grouped layouts, c * spatial + s for row-major.
struct Strides {
  int64_t block, pixel, image;
  Strides(SparseLayout layout, int64_t channels, int64_t spatial)
      : block(layout == SparseLayout::kBlocked16 ? 16 * spatial : 16),
        pixel(layout == SparseLayout::kBlocked16 ? 16 : channels),
        image(layout == SparseLayout::kBlocked16 ? (channels + 15) / 16 * 16 * spatial : channels * spatial) {}
};

// Channel blocks [c0, c1) of one image x in a channel-grouped layout to
// row-major [channels][spatial], 16 x 16 at a time.
__attribute__((target("avx512f"))) void ToRowMajorAvx512(const float* x, Strides in, int64_t channels,
                                                          int64_t spatial, int64_t c0, int64_t c1, float* out) {
  for (int64_t cb = c0; cb < c1; ++cb) {
    const int64_t nc = std::min<int64_t>(16, channels - cb * 16);
    const __mmask16 channel_mask = static_cast<__mmask16>((1u << nc) - 1);
    for (int64_t s0 = 0; s0 < spatial; s0 += 16) {
      const int64_t np = std::min<int64_t>(16, spatial - s0);
      __m512 v[16];
      for (int64_t p = 0; p < 16; ++p) {
        v[p] = p < np ? _mm512_maskz_loadu_ps(channel_mask, x + cb * in.block + (s0 + p) * in.pixel)
                      : _mm512_setzero_ps();
      }
      Transpose16(v);  // v[c]: channel cb * 16 + c at pixels s0...
      for (int64_t c = 0; c < nc; ++c) {
        _mm512_mask_storeu_ps(out + (cb * 16 + c) * spatial + s0, static_cast<__mmask16>((1u << np) - 1), v[c]);
      }
    }
  }
}

void TilePortable(const SparseRows& w, const float* bias, const float* addend, float lo, float hi, const float* x,
                  int64_t spatial, int64_t s0, int64_t width, int64_t r0, int64_t r1, float* y, int64_t stride) {
  for (int64_t r = r0; r < r1; ++r) {
    float acc[kTile];
    for (int64_t i = 0; i < width; ++i) {
      acc[i] = (bias == nullptr ? 0.0f : bias[r]) + (addend == nullptr ? 0.0f : addend[(r - r0) * stride + i]);
    }
    for (int64_t k = w.start[r]; k < w.start[r + 1]; ++k) {
      const float v = w.value[k];
      const float* row = x + w.index[k] * spatial + s0;
      for (int64_t i = 0; i < width; ++i) acc[i] += v * row[i];
    }
    for (int64_t i = 0; i < width; ++i) y[(r - r0) * stride + i] = std::min(std::max(acc[i], lo), hi);
  }
}

}  // namespace

bool SparseChannelGroups() { return __builtin_cpu_supports("avx512f"); }

SparseRows SparseRows::FromDense(const float* dense, int64_t rows, int64_t cols) {
  SparseRows w;
  w.rows = rows;
  w.cols = cols;
  w.start.push_back(0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      if (dense[r * cols + c] == 0) continue;
      w.index.push_back(static_cast<int32_t>(c));
      w.value.push_back(dense[r * cols + c]);
    }
    w.start.push_back(static_cast<int64_t>(w.value.size()));
  }
  return w;
}

void SparseConv1x1(const SparseRows& w, const float* bias, const float* addend, const Activation& activation,
                   const float* x, SparseLayout x_layout, float* y, SparseLayout y_layout, int64_t batch,
                   int64_t spatial, float* scratch, int num_threads) {
  // Relu and Clip are a clamp in the tile; other activations a pass after it.
  using Kind = Activation::Kind;
  const bool plain = !activation.HasAffine() &&
                     (activation.kind == Kind::kNone || activation.kind == Kind::kRelu || activation.kind == Kind::kClip);
  const float lo = !plain || activation.kind == Kind::kNone ? -INFINITY
                   : activation.kind == Kind::kRelu         ? 0.0f
                                                            : activation.alpha;
  const float hi = plain && activation.kind == Kind::kClip ? activation.beta : INFINITY;
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  auto tile = avx512 ? TileAvx512 : TilePortable;
  const Strides in(x_layout, w.cols, spatial), out(y_layout, w.rows, spatial);
  const bool blocked_output = y_layout != SparseLayout::kRowMajor;
  const int64_t tiles = (spatial + kTile - 1) / kTile;
  // Each thread takes whole rows (blocks of 16 rows for a blocked output),
  // as many non-zero weights as the others, and goes through the pixels tile
  // by tile, so a tile of x serves all its rows.
  const bool parallel = WorthThreads(num_threads, w.rows, static_cast<double>(w.value.size()) * batch * spatial);
  const int threads = parallel ? num_threads : 1;
  const int64_t unit = blocked_output ? 16 : 1, units = w.rows / unit;
#pragma omp parallel num_threads(threads) if (parallel)
  {
    const int t = parallel ? omp_get_thread_num() : 0;
    const int64_t nnz = static_cast<int64_t>(w.value.size());
    auto first_unit = [&](int64_t share) {  // the first unit whose weights start at or after `share`
      int64_t u = 0;
      while (u < units && w.start[u * unit] < share) ++u;
      return u;
    };
    const int64_t u0 = t == 0 ? 0 : first_unit(nnz * t / threads);
    const int64_t u1 = t + 1 == threads ? units : first_unit(nnz * (t + 1) / threads);
    const int64_t blocks = (w.cols + 15) / 16;
    for (int64_t n = 0; n < batch; ++n) {
      const float* xn = x + n * in.image;
      if (x_layout != SparseLayout::kRowMajor) {  // to row-major in scratch, the threads sharing the blocks
        ToRowMajorAvx512(xn, in, w.cols, spatial, blocks * t / threads, blocks * (t + 1) / threads, scratch);
#pragma omp barrier
        xn = scratch;
      }
      float* yn = y + n * out.image;
      const float* an = addend == nullptr ? nullptr : addend + n * out.image;
      for (int64_t i = 0; i < tiles; ++i) {
        const int64_t s0 = i * kTile, width = std::min(kTile, spatial - s0);
        if (blocked_output) {
          BlockAvx512(w, bias, an, lo, hi, xn, yn, spatial, out.block, out.pixel, s0, width, u0, u1);
        } else {
          tile(w, bias, an == nullptr ? nullptr : an + u0 * spatial + s0, lo, hi, xn, spatial, s0, width, u0, u1,
               yn + u0 * spatial + s0, spatial);
        }
      }
      if (!plain && y_layout == SparseLayout::kChannelsLast) {
        for (int64_t p = 0; p < spatial; ++p) {
          for (int64_t k = u0 * 16; k < u1 * 16; ++k) yn[p * w.rows + k] = activation.Apply(yn[p * w.rows + k]);
        }
      } else if (!plain) {  // rows [u0, u1) are one range of memory
        for (int64_t k = u0 * unit * spatial; k < u1 * unit * spatial; ++k) yn[k] = activation.Apply(yn[k]);
      }
      if (x_layout != SparseLayout::kRowMajor) {
#pragma omp barrier
      }
    }
  }
}

}  // namespace slimserve::runtime::reference
