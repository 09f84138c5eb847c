// The matrix multiply behind the reference Conv, ConvTranspose, Gemm and
// MatMul: cache-blocked, packed, multi-threaded with OpenMP, and vectorized
// by the compiler (the inner kernel is built for several x86 ISAs and chosen
// when the library loads, since the build itself targets baseline x86-64).
//
// B is not a matrix in memory but a source of row segments, so that Conv can
// write its im2col rows straight into the packed panel instead of
// materializing the whole im2col matrix. Accumulates in T.
//
//   // C (m x n, row-major) += A (m x k) * B (k x n), both row-major:
//   GemmAccumulate<float>(m, n, k, 1.0f, {a, k, 1}, MatrixView<float>{b, n, 1}, c, n, threads);
#ifndef SLIMSERVE_RUNTIME_REFERENCE_GEMM_H_
#define SLIMSERVE_RUNTIME_REFERENCE_GEMM_H_

#include <cstdint>

#include "absl/functional/function_ref.h"

namespace slimserve::runtime::reference {

// Element (i, j) is data[i * row_stride + j * col_stride]; a transposed
// matrix is the same memory with the strides swapped.
template <typename T>
struct MatrixView {
  const T* data;
  int64_t row_stride;
  int64_t col_stride;

  T operator()(int64_t i, int64_t j) const { return data[i * row_stride + j * col_stride]; }
};

// Writes B[k, j0 .. j0 + len) to dst[0 .. len).
template <typename T>
using RowSource = absl::FunctionRef<void(int64_t k, int64_t j0, int64_t len, T* dst)>;

// C[i, j] += alpha * sum_p A(i, p) * B(p, j) for i < m, j < n, p < depth.
// C is row-major with row stride ldc and must not alias A or B. Uses up to
// `num_threads` OpenMP threads; b_rows is then called concurrently.
template <typename T>
void GemmAccumulate(int64_t m, int64_t n, int64_t depth, T alpha, MatrixView<T> a,
                    RowSource<T> b_rows, T* c, int64_t ldc, int num_threads);
template <typename T>
void GemmAccumulate(int64_t m, int64_t n, int64_t depth, T alpha, MatrixView<T> a, MatrixView<T> b,
                    T* c, int64_t ldc, int num_threads);

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_GEMM_H_
