#include "runtime/reference/gemm.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "runtime/reference/multiversion.h"
#include "runtime/reference/parallel.h"

namespace slimserve::runtime::reference {
namespace {

// Register tile: kMr rows of A times kNr<T> columns of B (two AVX-512
// registers per row), held in accumulators across the whole depth block.
constexpr int64_t kMr = 6;
template <typename T>
constexpr int64_t kNr = std::clamp<int64_t>(128 / sizeof(T), 8, 32);
// Cache blocks: a kKc x kNc panel of B (~400 KB of floats) stays in L2 while
// kMc x kKc blocks of A stream through it.
constexpr int64_t kMc = 16 * kMr;
constexpr int64_t kKc = 256;
constexpr int64_t kNc = 384;

// tile = A_sliver (kc x kMr, k-major) * B panel columns [0, kNr) (row stride ldb).
// A flat accumulator array with constant trip counts is the form GCC keeps in
// registers and vectorizes reliably.
template <typename T>
SLIMSERVE_MULTIVERSION void MicroKernel(int64_t kc, const T* __restrict a, const T* __restrict b,
                                        int64_t ldb, T* __restrict tile) {
  constexpr int64_t nr = kNr<T>;
  T acc[kMr * nr] = {};
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += ldb) {
#pragma GCC unroll 16
    for (int64_t r = 0; r < kMr; ++r) {
#pragma GCC ivdep
      for (int64_t j = 0; j < nr; ++j) acc[r * nr + j] += a[r] * b[j];
    }
  }
  std::memcpy(tile, acc, sizeof(acc));
}

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Rows [i0, i0 + mc) x depth [p0, p0 + kc) of A as kMr-row slivers, each
// stored k-major; rows past mc are zero.
template <typename T>
void PackA(MatrixView<T> a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* dst) {
  for (int64_t ir = 0; ir < mc; ir += kMr) {
    T* sliver = dst + ir * kc;
    for (int64_t r = 0; r < kMr; ++r) {
      if (ir + r >= mc) {
        for (int64_t p = 0; p < kc; ++p) sliver[p * kMr + r] = T(0);
        continue;
      }
      const T* src = a.data + (i0 + ir + r) * a.row_stride + p0 * a.col_stride;
      for (int64_t p = 0; p < kc; ++p) sliver[p * kMr + r] = src[p * a.col_stride];
    }
  }
}

}  // namespace

template <typename T>
void GemmAccumulate(int64_t m, int64_t n, int64_t depth, T alpha, MatrixView<T> a,
                    RowSource<T> b_rows, T* c, int64_t ldc, int num_threads) {
  if (m <= 0 || n <= 0 || depth <= 0) return;
  constexpr int64_t nr = kNr<T>;
  const int64_t mc_max = std::min(kMc, RoundUp(m, kMr));
  const int64_t nc_max = std::min(kNc, RoundUp(n, nr));
  const int64_t kc_max = std::min(kKc, depth);
  const int64_t n_tiles = (n + kNc - 1) / kNc;
  const int64_t tiles = (m + kMc - 1) / kMc * n_tiles;
  const bool parallel = WorthThreads(num_threads, tiles, double(m) * n * depth);
#pragma omp parallel num_threads(num_threads) if (parallel)
  {
    // Per-thread packing buffers, uninitialized: every element read is written first.
    std::unique_ptr<T[]> a_pack(new T[mc_max * kc_max]);
    std::unique_ptr<T[]> b_pack(new T[kc_max * nc_max]);
    T tile[kMr * nr];
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t i0 = t / n_tiles * kMc, j0 = t % n_tiles * kNc;
      const int64_t mc = std::min(kMc, m - i0), nc = std::min(kNc, n - j0);
      const int64_t ldb = RoundUp(nc, nr);
      for (int64_t p0 = 0; p0 < depth; p0 += kKc) {
        const int64_t kc = std::min(kKc, depth - p0);
        PackA(a, i0, mc, p0, kc, a_pack.get());
        for (int64_t p = 0; p < kc; ++p) {
          T* row = b_pack.get() + p * ldb;
          b_rows(p0 + p, j0, nc, row);
          std::fill(row + nc, row + ldb, T(0));
        }
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t cols = std::min(nr, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += kMr) {
            MicroKernel<T>(kc, a_pack.get() + ir * kc, b_pack.get() + jr, ldb, tile);
            const int64_t rows = std::min(kMr, mc - ir);
            for (int64_t r = 0; r < rows; ++r) {
              T* out = c + (i0 + ir + r) * ldc + j0 + jr;
              for (int64_t j = 0; j < cols; ++j) out[j] += alpha * tile[r * nr + j];
            }
          }
        }
      }
    }
  }
}

template <typename T>
void GemmAccumulate(int64_t m, int64_t n, int64_t depth, T alpha, MatrixView<T> a, MatrixView<T> b,
                    T* c, int64_t ldc, int num_threads) {
  auto rows = [b](int64_t p, int64_t j0, int64_t len, T* dst) {
    const T* src = b.data + p * b.row_stride + j0 * b.col_stride;
    if (b.col_stride == 1) {
      std::memcpy(dst, src, len * sizeof(T));
    } else {
      for (int64_t j = 0; j < len; ++j) dst[j] = src[j * b.col_stride];
    }
  };
  GemmAccumulate<T>(m, n, depth, alpha, a, RowSource<T>(rows), c, ldc, num_threads);
}

#define SLIMSERVE_INSTANTIATE_GEMM(T)                                                             \
  template void GemmAccumulate<T>(int64_t, int64_t, int64_t, T, MatrixView<T>, RowSource<T>, T*,  \
                                  int64_t, int);                                                  \
  template void GemmAccumulate<T>(int64_t, int64_t, int64_t, T, MatrixView<T>, MatrixView<T>, T*, \
                                  int64_t, int);
SLIMSERVE_INSTANTIATE_GEMM(float)
SLIMSERVE_INSTANTIATE_GEMM(double)
SLIMSERVE_INSTANTIATE_GEMM(int8_t)
SLIMSERVE_INSTANTIATE_GEMM(uint8_t)
SLIMSERVE_INSTANTIATE_GEMM(int16_t)
SLIMSERVE_INSTANTIATE_GEMM(uint16_t)
SLIMSERVE_INSTANTIATE_GEMM(int32_t)
SLIMSERVE_INSTANTIATE_GEMM(uint32_t)
SLIMSERVE_INSTANTIATE_GEMM(int64_t)
SLIMSERVE_INSTANTIATE_GEMM(uint64_t)
#undef SLIMSERVE_INSTANTIATE_GEMM

}  // namespace slimserve::runtime::reference
