// Sparse 1x1 convolution: y[n][r][s] = f(b[r] + sum_c W[r][c] x[n][c][s]) in
// NCHW with W stored as compressed rows (only its non-zero weights). Pays
// where most weights are zero: the work is the non-zero weights' multiply-
// adds, each a row of x, 64 pixels at a time in AVX-512 registers.
//
//   const SparseRows w = SparseRows::FromDense(weights, out_channels, in_channels);
//   SparseConv1x1(w, bias, nullptr, activation, x, SparseLayout::kRowMajor, y, SparseLayout::kRowMajor,
//                 batch, height * width, nullptr, threads);
#ifndef SLIMSERVE_RUNTIME_REFERENCE_SPARSE_H_
#define SLIMSERVE_RUNTIME_REFERENCE_SPARSE_H_

#include <cstdint>
#include <vector>

#include "runtime/activation.h"

namespace slimserve::runtime::reference {

struct SparseRows {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> start;  // rows + 1 offsets into index and value
  std::vector<int32_t> index;  // column of each non-zero weight
  std::vector<float> value;

  // The non-zero entries of the row-major rows x cols matrix `dense`.
  static SparseRows FromDense(const float* dense, int64_t rows, int64_t cols);
  // Share of the weights that are not zero.
  double density() const { return rows * cols == 0 ? 1.0 : static_cast<double>(value.size()) / (rows * cols); }
};

// Layouts of an image of C channels x S pixels: row-major ([C][S], NCHW),
// oneDNN's channel-blocked nChw16c ([C / 16][S][16], C padded to 16) or
// channels last ([S][C], NHWC). The last two take AVX-512
// (SparseChannelGroups()) and, for the output, rows in multiples of 16.
enum class SparseLayout { kRowMajor, kBlocked16, kChannelsLast };
bool SparseChannelGroups();

// y = f(conv(x) + bias + addend) per image, x of w.cols channels in
// `x_layout`, y and `addend` (a residual added before the activation) of
// w.rows channels in `y_layout`. `bias` and `addend` may be null. `scratch`
// holds w.cols x spatial floats, for an x not row-major.
void SparseConv1x1(const SparseRows& w, const float* bias, const float* addend, const Activation& activation,
                   const float* x, SparseLayout x_layout, float* y, SparseLayout y_layout, int64_t batch,
                   int64_t spatial, float* scratch, int num_threads);

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_SPARSE_H_
