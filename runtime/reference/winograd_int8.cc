#include "runtime/reference/winograd_int8.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "runtime/reference/parallel.h"

// GCC 12's AVX-512 intrinsics seed their results with a self-initialized
// "undefined" vector, which -Wmaybe-uninitialized reports once inlined (GCC
// bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace slimserve::runtime::reference {
namespace {

#define SLIMSERVE_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// G with its rows scaled by 4, 6, 6, 24, 24 and 1 to integers; the output
// transform divides by the same factors (kOutputScale, below).
constexpr int kG[6][3] = {{1, 0, 0}, {-1, -1, -1}, {-1, 1, -1}, {1, 2, 4}, {1, -2, 4}, {0, 0, 1}};
// A^T's columns times 24 / (4, 6, 6, 24, 24, 1), in both dimensions.
constexpr float kOutputScale = 1.0f / 576;

constexpr int kRows = 12;       // tiles per register block of the product
constexpr int kBlockLanes = 32;  // output channels per product block (two vectors)

// The 4x4 output tiles of the batch, image by image, row by row.
struct Tiles {
  int64_t cols, per_image, count;
  explicit Tiles(const WinogradInt8Geometry& g)
      : cols((g.out_width + 3) / 4), per_image((g.out_height + 3) / 4 * cols), count(g.batch * per_image) {}
  // Tile t's image and first output row and column.
  void Locate(int64_t t, int64_t& n, int64_t& h, int64_t& w) const {
    n = t / per_image;
    h = t % per_image / cols * 4;
    w = t % per_image % cols * 4;
  }
};

// Tiles split into equal shares, one per thread, and each share into
// blocks, each transformed, multiplied and transformed back in turn: as
// many tiles as keep their transformed inputs and products within ~640 KiB
// (in L2 while every output channel block reads them; more tiles per block
// read the weights fewer times), a multiple of the register block's rows.
// (Blocks of one size across all threads left one thread 12 % more tiles
// than the other on 14x14 and 7x7 images at batch 16.)
struct Blocking {
  int64_t share, per_thread, per_block, blocks;
  Blocking(const WinogradInt8Weights& w, const Tiles& tiles, int threads) {
    int64_t fit = std::clamp<int64_t>((640 << 10) / (36 * (w.depth * 2 + kBlockLanes * 4)) / kRows * kRows,
                                      kRows, 10 * kRows);
    // Every block reads all the weights, 2 / fit bytes per multiply-add:
    // beyond ~8 MiB (512 x 512 channels: 18 MiB) they come from L3 or memory
    // at a rate that starves the products, and blocks of up to ~6 MiB of
    // transformed inputs (one per thread, where that is enough) cost less
    // even out of L2 (16x16x512 at batch 16: 198 instead of 171 GMAC/s).
    if (static_cast<int64_t>(w.u.size()) * 2 > (8 << 20)) fit = std::max(fit, (6 << 20) / (36 * w.depth * 2));
    const int64_t t = std::max(1, threads);
    share = (tiles.count + t - 1) / t;
    per_thread = (share + fit - 1) / fit;
    per_block = ((share + per_thread - 1) / per_thread + kRows - 1) / kRows * kRows;
    blocks = per_thread * t;
  }
  // Block b's tiles [first, last), empty past the end.
  void Range(int64_t b, int64_t count, int64_t& first, int64_t& last) const {
    const int64_t start = b / per_thread * share, end = std::min(count, start + share);
    first = std::min(end, start + b % per_thread * per_block);
    last = std::min(end, first + per_block);
  }
  // Per thread: v[36][depth / 32][per_block][32] int16, then m[36][per_block][32] int32.
  int64_t ScratchBytes(const WinogradInt8Weights& w) const {
    return 36 * per_block * (w.depth * 2 + kBlockLanes * 4) + 64;
  }
};

// The 1-D input transform B^T d on 16-bit lanes.
SLIMSERVE_VNNI inline void InputTransform1D(const __m512i d[6], __m512i r[6]) {
  const __m512i d12 = _mm512_add_epi16(d[1], d[2]);
  const __m512i d34 = _mm512_add_epi16(d[3], d[4]);
  r[0] = _mm512_add_epi16(_mm512_sub_epi16(_mm512_slli_epi16(_mm512_sub_epi16(d[0], d[2]), 2), d[2]), d[4]);
  r[1] = _mm512_sub_epi16(d34, _mm512_slli_epi16(d12, 2));
  r[2] = _mm512_add_epi16(_mm512_slli_epi16(_mm512_sub_epi16(d[1], d[2]), 2), _mm512_sub_epi16(d[4], d[3]));
  const __m512i d31 = _mm512_slli_epi16(_mm512_sub_epi16(d[3], d[1]), 1);
  const __m512i d42 = _mm512_sub_epi16(d[4], d[2]);
  r[3] = _mm512_add_epi16(d31, d42);
  r[4] = _mm512_sub_epi16(d42, d31);
  r[5] = _mm512_add_epi16(_mm512_sub_epi16(_mm512_slli_epi16(_mm512_sub_epi16(d[1], d[3]), 2), d[3]), d[5]);
}

// Transformed inputs of tiles [first, first + count) into
// v[36][depth / 32][count][32]: a product reads 16 channel pairs of 12
// tiles at fixed offsets from one address. The zero point is subtracted
// after the transform, where B^T 1 = (0, -6, 0, 0, 0, 0) leaves it only in
// position (1, 1) as 36 zp (16-bit sums wrap, but the final values fit);
// pixels outside the image count as the zero point. Channels past the
// input's are garbage that meets zero weights.
template <bool kSigned>
SLIMSERVE_VNNI void TransformInputs(const int8_t* x, const WinogradInt8Geometry& g, const Tiles& tiles,
                                    int64_t channels, int64_t depth, int32_t zero_point, int64_t first,
                                    int64_t count, int16_t* v) {
  const __m512i padding = _mm512_set1_epi16(static_cast<int16_t>(zero_point));
  const __m512i correction = _mm512_set1_epi16(static_cast<int16_t>(36 * zero_point));
  for (int64_t i = 0; i < count; ++i) {
    int64_t n, h0, w0;
    tiles.Locate(first + i, n, h0, w0);
    h0 -= g.pad_top;
    w0 -= g.pad_left;
    const bool inside = h0 >= 0 && w0 >= 0 && h0 + 6 <= g.height && w0 + 6 <= g.width;
    const int64_t origin = ((n * g.height + h0) * g.width + w0) * channels;  // may lie before x
    for (int64_t c = 0; c < depth; c += 32) {
      const __mmask32 mask = channels - c >= 32 ? ~__mmask32{0} : (__mmask32{1} << (channels - c)) - 1;
      __m512i rows[6][6];
      for (int a = 0; a < 6; ++a) {
        __m512i d[6];
        for (int b = 0; b < 6; ++b) {
          if (!inside && (h0 + a < 0 || h0 + a >= g.height || w0 + b < 0 || w0 + b >= g.width)) {
            d[b] = padding;
            continue;
          }
          const __m256i raw = _mm256_maskz_loadu_epi8(mask, x + origin + (a * g.width + b) * channels + c);
          d[b] = kSigned ? _mm512_cvtepi8_epi16(raw) : _mm512_cvtepu8_epi16(raw);
        }
        InputTransform1D(d, rows[a]);  // along the row: d B
      }
      for (int b = 0; b < 6; ++b) {
        const __m512i column[6] = {rows[0][b], rows[1][b], rows[2][b], rows[3][b], rows[4][b], rows[5][b]};
        __m512i out[6];
        InputTransform1D(column, out);  // down the column: B^T (d B)
        if (b == 1) out[1] = _mm512_sub_epi16(out[1], correction);
        for (int a = 0; a < 6; ++a) {
          _mm512_storeu_si512(v + (((a * 6 + b) * depth / 32 + c / 32) * count + i) * 32, out[a]);
        }
      }
    }
  }
}

// acc + the pairwise products of a and b's 16-bit lanes, saturated. In
// assembly: GCC 12 copies the accumulator of the intrinsic around every use.
SLIMSERVE_VNNI inline __m512i DotPairs(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpwssds %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

// m[r][16 z + lane] = sum over k of v_r[k] u_z[k][lane], for R rows of v
// (chunks of 16 channel pairs, `count` rows apart) and Z blocks of 16 output
// channels of u (u_stride apart); 16-bit pairs, 32-bit saturating sums.
// With `next`, the weights laid out like u that the following product reads
// are fetched into L2 meanwhile: large weights come from memory, and a
// product waiting for them runs 5 % slower (7x7x512 at batch 16).
template <int R, int Z>
SLIMSERVE_VNNI void Product(const int16_t* v, int64_t depth, int64_t count, const int16_t* u, int64_t u_stride,
                            int32_t* m, const int16_t* next) {
  __m512i acc[R][Z];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int z = 0; z < Z; ++z) acc[r][z] = _mm512_setzero_si512();
  }
  for (int64_t chunk = 0; chunk < depth / 32; ++chunk) {
    const int32_t* pairs = reinterpret_cast<const int32_t*>(v + chunk * count * 32);
    const int16_t* uk = u + chunk * 16 * 32;
    if (next != nullptr) {
      for (int z = 0; z < Z; ++z) {
        for (int k = 0; k < 16; ++k) {
          _mm_prefetch(reinterpret_cast<const char*>(next + z * u_stride + (chunk * 16 + k) * 32), _MM_HINT_T1);
        }
      }
    }
#pragma GCC unroll 16
    for (int k = 0; k < 16; ++k) {
      __m512i b[Z];
#pragma GCC unroll 2
      for (int z = 0; z < Z; ++z) b[z] = _mm512_loadu_si512(uk + z * u_stride + k * 32);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512i a = _mm512_set1_epi32(pairs[r * 16 + k]);
#pragma GCC unroll 2
        for (int z = 0; z < Z; ++z) acc[r][z] = DotPairs(acc[r][z], a, b[z]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int z = 0; z < Z; ++z) _mm512_storeu_si512(m + r * kBlockLanes + z * 16, acc[r][z]);
  }
}

template <int Z>
SLIMSERVE_VNNI void ProductRows(int rows, const int16_t* v, int64_t depth, int64_t count, const int16_t* u,
                                int64_t u_stride, int32_t* m, const int16_t* next) {
  switch (rows) {
#define SLIMSERVE_ROWS(R) \
  case R: return Product<R, Z>(v, depth, count, u, u_stride, m, next);
    SLIMSERVE_ROWS(1) SLIMSERVE_ROWS(2) SLIMSERVE_ROWS(3) SLIMSERVE_ROWS(4) SLIMSERVE_ROWS(5) SLIMSERVE_ROWS(6)
    SLIMSERVE_ROWS(7) SLIMSERVE_ROWS(8) SLIMSERVE_ROWS(9) SLIMSERVE_ROWS(10) SLIMSERVE_ROWS(11) SLIMSERVE_ROWS(12)
#undef SLIMSERVE_ROWS
  }
}

// The 1-D output transform (24 A^T D^-1) m.
SLIMSERVE_VNNI inline void OutputTransform1D(const __m512 m[6], __m512 o[4]) {
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  const __m512 four = _mm512_set1_ps(4);
  o[0] = _mm512_fmadd_ps(_mm512_set1_ps(6), m[0], _mm512_fmadd_ps(four, s12, s34));
  o[1] = _mm512_fmadd_ps(four, d12, _mm512_add_ps(d34, d34));
  o[2] = _mm512_mul_ps(four, _mm512_add_ps(s12, s34));
  o[3] = _mm512_fmadd_ps(four, d12, _mm512_fmadd_ps(_mm512_set1_ps(8), d34, _mm512_mul_ps(_mm512_set1_ps(24), m[5])));
}

SLIMSERVE_VNNI inline __m512 LoadAsFloat(const void* p, int64_t index, Int8ConvType type) {
  switch (type) {
    case Int8ConvType::kUint8:
      return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(p) + index))));
    case Int8ConvType::kInt8:
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(p) + index))));
    case Int8ConvType::kFloat32: return _mm512_loadu_ps(static_cast<const float*>(p) + index);
  }
  return _mm512_setzero_ps();
}

// The epilogue's constants for 16 channels. Without an addend the
// requantization joins the scale and bias, and ReLU becomes a floor at the
// zero point: max(v, 0) / y_scale + zp = max(v / y_scale + zp, zp).
struct Lanes {
  __m512 scale, bias, floor, addend_scale, addend_shift, y_factor, y_shift;

  SLIMSERVE_VNNI Lanes(const WinogradInt8Epilogue& e, int64_t k) {
    const bool to_int = e.y_type != Int8ConvType::kFloat32;
    const float factor = to_int ? 1.0f / e.y_scale : 1.0f;
    const float zero_point = to_int ? static_cast<float>(e.y_zero_point) : 0.0f;
    const bool folded = e.addend == nullptr;
    scale = _mm512_mul_ps(_mm512_loadu_ps(e.scale + k), _mm512_set1_ps(kOutputScale * (folded ? factor : 1.0f)));
    bias = e.bias != nullptr ? _mm512_loadu_ps(e.bias + k) : _mm512_setzero_ps();
    if (folded) bias = _mm512_fmadd_ps(bias, _mm512_set1_ps(factor), _mm512_set1_ps(zero_point));
    floor = _mm512_set1_ps(!e.relu ? -INFINITY : folded ? zero_point : 0.0f);
    addend_scale = _mm512_set1_ps(e.addend_scale);
    addend_shift = _mm512_set1_ps(-e.addend_scale * static_cast<float>(e.addend_zero_point));
    y_factor = _mm512_set1_ps(factor);
    y_shift = _mm512_set1_ps(zero_point);
  }
};

SLIMSERVE_VNNI void Store(__m512 value, const Lanes& lanes, const WinogradInt8Epilogue& e, int64_t index, void* y) {
  __m512 v = _mm512_fmadd_ps(value, lanes.scale, lanes.bias);
  if (e.addend != nullptr) {
    v = _mm512_add_ps(v, _mm512_fmadd_ps(LoadAsFloat(e.addend, index, e.y_type), lanes.addend_scale,
                                         lanes.addend_shift));
    v = _mm512_fmadd_ps(_mm512_max_ps(v, lanes.floor), lanes.y_factor, lanes.y_shift);
  } else {
    v = _mm512_max_ps(v, lanes.floor);
  }
  if (e.y_type == Int8ConvType::kFloat32) {
    _mm512_storeu_ps(static_cast<float*>(y) + index, v);
    return;
  }
  // Rounded to nearest even (the default rounding mode), then saturated.
  const __m512i q = _mm512_cvtps_epi32(v);
  const __m128i bytes = e.y_type == Int8ConvType::kUint8
                            ? _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()))
                            : _mm512_cvtsepi32_epi8(q);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(y) + index), bytes);
}

// Outputs of tiles [first, first + count), channels [channel, channel + 16 Z),
// from m[36][count][kBlockLanes].
SLIMSERVE_VNNI void TransformOutputs(const int32_t* m, const WinogradInt8Geometry& g, const Tiles& tiles,
                                     int64_t out_channels, int64_t channel, int lanes_used, int64_t first,
                                     int64_t count, const WinogradInt8Epilogue& e, void* y) {
  const int halves = lanes_used / 16;
  const Lanes lanes[2] = {Lanes(e, channel), Lanes(e, channel + 16 * (halves - 1))};
  for (int64_t i = 0; i < count; ++i) {  // both halves of a tile's products at once, while in L1
    int64_t n, h0, w0;
    tiles.Locate(first + i, n, h0, w0);
    for (int z = 0; z < halves; ++z) {
      const int64_t k = channel + z * 16;
      __m512 rows[6][4];
      for (int a = 0; a < 6; ++a) {
        __m512 s[6];
        for (int b = 0; b < 6; ++b) {
          s[b] = _mm512_cvtepi32_ps(_mm512_loadu_si512(m + ((a * 6 + b) * count + i) * kBlockLanes + z * 16));
        }
        OutputTransform1D(s, rows[a]);
      }
      for (int b = 0; b < 4; ++b) {
        const int64_t w = w0 + b;
        if (w >= g.out_width) break;
        const __m512 column[6] = {rows[0][b], rows[1][b], rows[2][b], rows[3][b], rows[4][b], rows[5][b]};
        __m512 out[4];
        OutputTransform1D(column, out);
        for (int a = 0; a < 4 && h0 + a < g.out_height; ++a) {
          Store(out[a], lanes[z], e, ((n * g.out_height + h0 + a) * g.out_width + w) * out_channels + k, y);
        }
      }
    }
  }
}

SLIMSERVE_VNNI void ConvBlock(const WinogradInt8Weights& w, const int8_t* x, bool x_signed, int32_t x_zero_point,
                              const WinogradInt8Geometry& g, const Tiles& tiles, const WinogradInt8Epilogue& e,
                              int64_t first, int64_t count, int16_t* v, int32_t* m, void* y) {
  if (x_signed) {
    TransformInputs<true>(x, g, tiles, w.in_channels, w.depth, x_zero_point, first, count, v);
  } else {
    TransformInputs<false>(x, g, tiles, w.in_channels, w.depth, x_zero_point, first, count, v);
  }
  const int64_t groups = w.out_channels / 16, u_stride = w.depth * 16;
  for (int64_t group = 0; group < groups; group += 2) {
    const int z = static_cast<int>(std::min<int64_t>(2, groups - group));
    for (int p = 0; p < 36; ++p) {
      const int16_t* u = w.u.data() + (p * groups + group) * u_stride;
      const int16_t* next = p + 1 < 36          ? u + groups * u_stride
                            : group + 2 < groups ? w.u.data() + (group + 2) * u_stride
                                                 : nullptr;
      for (int64_t r = 0; r < count; r += kRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kRows, count - r));
        const int16_t* fetch = r == 0 ? next : nullptr;  // once per weight block
        const int16_t* vp = v + (p * w.depth / 32 * count + r) * 32;
        int32_t* mp = m + (p * count + r) * kBlockLanes;
        if (z == 2) {
          ProductRows<2>(rows, vp, w.depth, count, u, u_stride, mp, fetch);
        } else {
          ProductRows<1>(rows, vp, w.depth, count, u, u_stride, mp, fetch);
        }
      }
    }
    TransformOutputs(m, g, tiles, w.out_channels, group * 16, z * 16, first, count, e, y);
  }
}

}  // namespace

bool WinogradInt8Available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

WinogradInt8Weights WinogradInt8Weights::FromDense(const int8_t* w, int64_t out_channels, int64_t in_channels) {
  WinogradInt8Weights t;
  t.in_channels = in_channels;
  t.out_channels = out_channels;
  t.depth = (in_channels + 31) / 32 * 32;
  const int64_t groups = out_channels / 16;
  t.u.assign(36 * groups * t.depth * 16, 0);
  for (int64_t o = 0; o < out_channels; ++o) {
    for (int64_t c = 0; c < in_channels; ++c) {
      const int8_t* g = w + (o * in_channels + c) * 9;
      int gg[6][3];  // G g
      for (int a = 0; a < 6; ++a) {
        for (int j = 0; j < 3; ++j) gg[a][j] = kG[a][0] * g[j] + kG[a][1] * g[3 + j] + kG[a][2] * g[6 + j];
      }
      for (int a = 0; a < 6; ++a) {
        for (int b = 0; b < 6; ++b) {
          const int value = gg[a][0] * kG[b][0] + gg[a][1] * kG[b][1] + gg[a][2] * kG[b][2];
          const int64_t p = a * 6 + b;
          t.u[((p * groups + o / 16) * (t.depth / 2) + c / 2) * 32 + (o % 16) * 2 + c % 2] = static_cast<int16_t>(value);
        }
      }
    }
  }
  return t;
}

size_t WinogradInt8ScratchBytes(const WinogradInt8Weights& w, const WinogradInt8Geometry& g, int num_threads) {
  return static_cast<size_t>(std::max(1, num_threads) * Blocking(w, Tiles(g), num_threads).ScratchBytes(w));
}

void WinogradInt8Conv(const WinogradInt8Weights& w, const void* x, bool x_signed, int32_t x_zero_point,
                      const WinogradInt8Geometry& g, const WinogradInt8Epilogue& e, void* y, void* scratch,
                      int num_threads) {
  const Tiles tiles(g);
  const bool parallel = WorthThreads(num_threads, tiles.count, 36.0 * tiles.count * w.depth * w.out_channels);
  const Blocking blocking(w, tiles, num_threads);  // as WinogradInt8ScratchBytes sized it
  const int64_t per_block = blocking.per_block, thread_bytes = blocking.ScratchBytes(w);
  // A static schedule hands each thread per_thread consecutive blocks: its share.
#pragma omp parallel for num_threads(std::max(1, num_threads)) if (parallel) schedule(static)
  for (int64_t block = 0; block < blocking.blocks; ++block) {
    int64_t first, last;
    blocking.Range(block, tiles.count, first, last);
    if (first == last) continue;
    char* base = static_cast<char*>(scratch) + (parallel ? omp_get_thread_num() : 0) * thread_bytes;
    int16_t* v = reinterpret_cast<int16_t*>(base);
    int32_t* m = reinterpret_cast<int32_t*>(base + 36 * per_block * w.depth * 2);
    ConvBlock(w, static_cast<const int8_t*>(x), x_signed, x_zero_point, g, tiles, e, first,
              last - first, v, m, y);
  }
}

}  // namespace slimserve::runtime::reference
