// Sliding-window geometry shared by Conv, ConvTranspose and the pooling ops:
// attribute parsing and validation (strides, dilations, pads, auto_pad),
// output sizes, and the range arithmetic that keeps window loops in bounds.
//
// Spatial dims are padded in front to exactly kWindowDims (size 1, kernel 1,
// stride 1, no pads), so one loop nest serves 1-D, 2-D and 3-D ops.
//
//   ASSIGN_OR_RETURN(Window w, ParseWindow(node, in_spatial, kernel));
//   RETURN_IF_ERROR(SetForwardOutput(node, /*ceil_mode=*/false, w));
#ifndef SLIMSERVE_RUNTIME_REFERENCE_WINDOW_H_
#define SLIMSERVE_RUNTIME_REFERENCE_WINDOW_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/graph.h"

namespace slimserve::runtime::reference {

inline constexpr int kWindowDims = 3;

struct Window {
  using Dims = std::array<int64_t, kWindowDims>;
  int rank = 0;  // the op's own number of spatial dims, 1..kWindowDims
  Dims in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1};
  Dims pad_begin{0, 0, 0}, pad_end{0, 0, 0};
  std::string auto_pad = "NOTSET";

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
  // The last `rank` dims of `d`: the op's own spatial shape.
  std::vector<int64_t> Spatial(const Dims& d) const { return {d.end() - rank, d.end()}; }
};

// Reads and validates strides, dilations, pads and auto_pad of a window with
// `kernel` over the spatial dims `in`. Output sizes are left to the caller.
absl::StatusOr<Window> ParseWindow(const Node& node, absl::Span<const int64_t> in,
                                   absl::Span<const int64_t> kernel);

// Output sizes of a forward window (Conv, pooling); resolves SAME_* and VALID
// pads. With ceil_mode, a last window that would start in the end padding is
// dropped (as PyTorch and newer ONNX specify).
absl::Status SetForwardOutput(const Node& node, bool ceil_mode, Window& w);

// Output sizes of a transposed window (ConvTranspose): from output_shape,
// from SAME_* (input size times stride) or from pads, with output_padding.
absl::Status SetTransposedOutput(const Node& node, Window& w);

// Splits `total` padding between begin and end: the odd unit goes to the end
// for SAME_UPPER, to the beginning otherwise.
std::pair<int64_t, int64_t> SplitPadding(int64_t total, bool upper);

// [lo, hi): the t in [0, count) with 0 <= base + t * step < limit, step > 0.
// Window loops use it for "taps of this output inside the input" and for
// "outputs whose tap k lands inside the input".
inline std::pair<int64_t, int64_t> InsideRange(int64_t count, int64_t base, int64_t step,
                                               int64_t limit) {
  const int64_t lo = base >= 0 ? 0 : (-base + step - 1) / step;
  const int64_t hi = base >= limit ? 0 : (limit - base + step - 1) / step;
  const int64_t clamped_lo = lo < count ? lo : count;
  return {clamped_lo, hi < clamped_lo ? clamped_lo : (hi < count ? hi : count)};
}

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_WINDOW_H_
