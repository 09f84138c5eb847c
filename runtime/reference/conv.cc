// Conv and ConvTranspose, 1-D to 3-D, grouped, dilated, strided, padded.
//
// Conv is a GEMM per (image, group): weights [M/g, C/g * k] times the im2col
// matrix [C/g * k, output positions], whose rows are generated straight into
// the GEMM's packed panel. Groups of one input channel (depthwise) run as a
// direct loop instead, where GEMM would have a depth of only k.
// ConvTranspose is the adjoint: a GEMM into a column buffer, then col2im.
#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/reference/common.h"
#include "runtime/reference/gemm.h"
#include "runtime/reference/nn_ops.h"
#include "runtime/reference/parallel.h"
#include "runtime/reference/window.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

struct ConvShapes {
  int64_t batch = 0;
  int64_t in_channels = 0;   // C
  int64_t out_channels = 0;  // M
  int64_t group = 1;
  Window window;
};

// Conv weights are [M, C/group, k...]; ConvTranspose weights [C, M/group, k...].
absl::StatusOr<ConvShapes> ConvGeometry(const Node& node, const Shape& x, const Shape& w,
                                        bool transposed) {
  auto invalid = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", message));
  };
  if (x.size() < 3 || w.size() != x.size()) {
    return invalid(absl::StrCat("input ", ShapeToString(x), " and weights ", ShapeToString(w),
                                " must both be [N, C, spatial...] of the same rank"));
  }
  ConvShapes s;
  s.batch = x[0];
  s.in_channels = x[1];
  s.group = node.GetInt("group", 1);
  if (s.group < 1 || s.in_channels % s.group != 0) {
    return invalid(
        absl::StrCat("group ", s.group, " does not divide ", s.in_channels, " input channels"));
  }
  const int64_t weight_in = transposed ? w[0] : w[1] * s.group;
  if (weight_in != s.in_channels) {
    return invalid(absl::StrCat("weights ", ShapeToString(w), " do not fit ", s.in_channels,
                                " input channels in ", s.group, " groups"));
  }
  s.out_channels = transposed ? w[1] * s.group : w[0];
  if (s.out_channels % s.group != 0) {
    return invalid(
        absl::StrCat("group ", s.group, " does not divide ", s.out_channels, " output channels"));
  }
  const absl::Span<const int64_t> x_spatial = absl::MakeConstSpan(x).subspan(2);
  const absl::Span<const int64_t> kernel = absl::MakeConstSpan(w).subspan(2);
  ASSIGN_OR_RETURN(s.window, ParseWindow(node, x_spatial, kernel));
  if (transposed) {
    RETURN_IF_ERROR(SetTransposedOutput(node, s.window));
  } else {
    RETURN_IF_ERROR(SetForwardOutput(node, /*ceil_mode=*/false, s.window));
  }
  return s;
}

absl::Status InferConvFamily(InferContext& c, bool transposed) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 3, kFloatTypes));
  ASSIGN_OR_RETURN(const ConvShapes s,
                   ConvGeometry(c.node, c.input(0).shape, c.input(1).shape, transposed));
  if (c.input(2).defined() && c.input(2).shape != Shape{s.out_channels}) {
    return c.Error(absl::StrCat("bias of shape ", ShapeToString(c.input(2).shape), " for ",
                                s.out_channels, " output channels"));
  }
  Shape out = {s.batch, s.out_channels};
  for (int64_t d : s.window.Spatial(s.window.out)) out.push_back(d);
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status InferConv(InferContext& c) { return InferConvFamily(c, false); }
absl::Status InferConvTranspose(InferContext& c) { return InferConvFamily(c, true); }

// Every output channel plane starts as its bias (or zero).
template <typename T>
void FillBias(ComputeContext& c, const ConvShapes& s, T* y) {
  const int64_t plane = s.window.out_size();
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t m = 0; m < s.out_channels; ++m) {
      const T b = c.has_input(2) ? c.input(2).data<T>()[m] : T(0);
      std::fill_n(y + (n * s.out_channels + m) * plane, plane, b);
    }
  }
}

// Output positions [begin, end) along one dim whose tap k lands inside the input.
std::pair<int64_t, int64_t> Inside(const Window& w, int d, int64_t k) {
  return InsideRange(w.out[d], k * w.dilation[d] - w.pad_begin[d], w.stride[d], w.in[d]);
}

// y[m] += w[m] (*) x[m / multiplier] for every image and output channel m:
// convolution where every group has one input channel. Loops run tap by tap
// over output rows, which the compiler vectorizes for unit stride.
template <typename T>
void DirectConv(const ConvShapes& s, const T* x, const T* weights, T* y, int num_threads) {
  const Window& w = s.window;
  const int64_t multiplier = s.out_channels / s.group;
  const int64_t in_plane = w.in_size(), out_plane = w.out_size();
  const int64_t planes = s.batch * s.out_channels;
  const bool parallel =
      WorthThreads(num_threads, planes, double(planes) * out_plane * w.kernel_size());
#pragma omp parallel for num_threads(num_threads) if (parallel)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / s.out_channels, m = p % s.out_channels;
    const T* in = x + (n * s.in_channels + m / multiplier) * in_plane;
    const T* wk = weights + m * w.kernel_size();
    T* out = y + p * out_plane;
    for (int64_t kz = 0; kz < w.kernel[0]; ++kz) {
      const auto [z0, z1] = Inside(w, 0, kz);
      for (int64_t ky = 0; ky < w.kernel[1]; ++ky) {
        const auto [y0, y1] = Inside(w, 1, ky);
        for (int64_t kx = 0; kx < w.kernel[2]; ++kx) {
          const auto [x0, x1] = Inside(w, 2, kx);
          const T wv = *wk++;
          for (int64_t oz = z0; oz < z1; ++oz) {
            const int64_t iz = oz * w.stride[0] - w.pad_begin[0] + kz * w.dilation[0];
            for (int64_t oy = y0; oy < y1; ++oy) {
              const int64_t iy = oy * w.stride[1] - w.pad_begin[1] + ky * w.dilation[1];
              const int64_t ix0 = x0 * w.stride[2] - w.pad_begin[2] + kx * w.dilation[2];
              const T* src = in + (iz * w.in[1] + iy) * w.in[2] + ix0;
              T* dst = out + (oz * w.out[1] + oy) * w.out[2];
              for (int64_t ox = x0; ox < x1; ++ox) dst[ox] += wv * src[(ox - x0) * w.stride[2]];
            }
          }
        }
      }
    }
  }
}

// Writes row p, columns [j0, j0 + len) of the im2col matrix of `in` (the
// group's first input channel) to dst. Row p is (channel, kz, ky, kx); column
// j an output position (oz, oy, ox).
template <typename T>
void Im2ColRow(const Window& w, const T* in, int64_t p, int64_t j0, int64_t len, T* dst) {
  const int64_t taps = w.kernel_size();
  const int64_t tap = p % taps;
  const int64_t k[3] = {tap / (w.kernel[1] * w.kernel[2]), tap / w.kernel[2] % w.kernel[1],
                        tap % w.kernel[2]};
  in += p / taps * w.in_size();
  const auto [x0, x1] = Inside(w, 2, k[2]);
  int64_t oz = j0 / (w.out[1] * w.out[2]), oy = j0 / w.out[2] % w.out[1], ox = j0 % w.out[2];
  while (len > 0) {
    const int64_t end = std::min(w.out[2], ox + len);
    const int64_t iz = oz * w.stride[0] - w.pad_begin[0] + k[0] * w.dilation[0];
    const int64_t iy = oy * w.stride[1] - w.pad_begin[1] + k[1] * w.dilation[1];
    int64_t lo = end, hi = end;  // columns [lo, hi) read the input, the rest are padding
    if (iz >= 0 && iz < w.in[0] && iy >= 0 && iy < w.in[1]) {
      lo = std::clamp(x0, ox, end);
      hi = std::clamp(x1, lo, end);
    }
    std::fill(dst, dst + (lo - ox), T(0));
    if (hi > lo) {
      const T* src = in + (iz * w.in[1] + iy) * w.in[2] + lo * w.stride[2] - w.pad_begin[2] +
                     k[2] * w.dilation[2];
      T* out = dst + (lo - ox);
      for (int64_t i = 0; i < hi - lo; ++i) out[i] = src[i * w.stride[2]];
    }
    std::fill(dst + (hi - ox), dst + (end - ox), T(0));
    dst += end - ox;
    len -= end - ox;
    ox = 0;
    if (++oy == w.out[1]) {
      oy = 0;
      ++oz;
    }
  }
}

absl::Status Conv(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ConvShapes s,
                   ConvGeometry(c.node, c.input(0).shape(), c.input(1).shape(), false));
  return VisitFloat(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = c.input(0).data<T>();
    const T* weights = c.input(1).data<T>();
    T* y = c.outputs[0].data<T>();
    FillBias(c, s, y);
    const Window& w = s.window;
    const int64_t cg = s.in_channels / s.group, mg = s.out_channels / s.group;
    if (cg == 1) {
      DirectConv(s, x, weights, y, c.num_threads);
      return absl::OkStatus();
    }
    // A 1x1 convolution with unit strides and no padding reads the input as is.
    const Window::Dims zeros{0, 0, 0}, ones{1, 1, 1};
    const bool pointwise =
        w.kernel_size() == 1 && w.stride == ones && w.pad_begin == zeros && w.pad_end == zeros;
    const int64_t depth = cg * w.kernel_size();
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t g = 0; g < s.group; ++g) {
        const T* in = x + (n * s.in_channels + g * cg) * w.in_size();
        auto rows = [&](int64_t p, int64_t j0, int64_t len, T* dst) {
          if (pointwise) {
            std::memcpy(dst, in + p * w.in_size() + j0, len * sizeof(T));
          } else {
            Im2ColRow(w, in, p, j0, len, dst);
          }
        };
        GemmAccumulate<T>(mg, w.out_size(), depth, T(1), {weights + g * mg * depth, depth, 1},
                          RowSource<T>(rows), y + (n * s.out_channels + g * mg) * w.out_size(),
                          w.out_size(), c.num_threads);
      }
    }
    return absl::OkStatus();
  });
}

// y[m, o] += col[(m, tap), i] wherever input position i under tap lands on
// output position o; parallel over output channels, which never collide.
template <typename T>
void Col2Im(const Window& w, int64_t channels, const T* col, T* y, int num_threads) {
  // Input positions [begin, end) along dim d whose tap k lands inside the output.
  auto inside = [&](int d, int64_t k) {
    return InsideRange(w.in[d], k * w.dilation[d] - w.pad_begin[d], w.stride[d], w.out[d]);
  };
  const int64_t in_plane = w.in_size(), out_plane = w.out_size();
  const bool parallel =
      WorthThreads(num_threads, channels, double(channels) * in_plane * w.kernel_size());
#pragma omp parallel for num_threads(num_threads) if (parallel)
  for (int64_t m = 0; m < channels; ++m) {
    const T* src = col + m * w.kernel_size() * in_plane;
    T* out = y + m * out_plane;
    for (int64_t kz = 0; kz < w.kernel[0]; ++kz) {
      const auto [z0, z1] = inside(0, kz);
      for (int64_t ky = 0; ky < w.kernel[1]; ++ky) {
        const auto [y0, y1] = inside(1, ky);
        for (int64_t kx = 0; kx < w.kernel[2]; ++kx, src += in_plane) {
          const auto [x0, x1] = inside(2, kx);
          for (int64_t iz = z0; iz < z1; ++iz) {
            const int64_t oz = iz * w.stride[0] - w.pad_begin[0] + kz * w.dilation[0];
            for (int64_t iy = y0; iy < y1; ++iy) {
              const int64_t oy = iy * w.stride[1] - w.pad_begin[1] + ky * w.dilation[1];
              const int64_t ox0 = x0 * w.stride[2] - w.pad_begin[2] + kx * w.dilation[2];
              T* dst = out + (oz * w.out[1] + oy) * w.out[2] + ox0;
              const T* row = src + (iz * w.in[1] + iy) * w.in[2];
              for (int64_t ix = x0; ix < x1; ++ix) dst[(ix - x0) * w.stride[2]] += row[ix];
            }
          }
        }
      }
    }
  }
}

absl::Status ConvTranspose(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ConvShapes s,
                   ConvGeometry(c.node, c.input(0).shape(), c.input(1).shape(), true));
  return VisitFloat(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = c.input(0).data<T>();
    const T* weights = c.input(1).data<T>();
    T* y = c.outputs[0].data<T>();
    FillBias(c, s, y);
    const Window& w = s.window;
    const int64_t cg = s.in_channels / s.group, mg = s.out_channels / s.group;
    // Columns for a chunk of a group's output channels at a time: one row per
    // (channel, tap), one column per input position. The chunk keeps the
    // buffer near kColumnBytes; a single channel over the cap is an error,
    // not an allocation that would take the machine down.
    constexpr int64_t kColumnBytes = int64_t{64} << 20, kMaxColumnBytes = int64_t{1} << 32;
    const int64_t channel_values = w.kernel_size() * w.in_size();
    const int64_t chunk = std::clamp<int64_t>(
        kColumnBytes / static_cast<int64_t>(sizeof(T)) / std::max<int64_t>(channel_values, 1), 1,
        mg);
    ASSIGN_OR_RETURN(
        Tensor col, Tensor::Allocate(c.input(0).dtype(), {chunk, channel_values}, kMaxColumnBytes));
    const int64_t ld = mg * w.kernel_size();  // row stride of a group's weights [cg, mg * taps]
    for (int64_t n = 0; n < s.batch; ++n) {
      for (int64_t g = 0; g < s.group; ++g) {
        const T* x_g = x + (n * s.in_channels + g * cg) * w.in_size();
        for (int64_t m0 = 0; m0 < mg; m0 += chunk) {
          const int64_t channels = std::min(chunk, mg - m0);
          // col = W^T x over the chunk, with W [cg, channels * taps] and x [cg, positions].
          T* columns = col.data<T>();
          std::fill_n(columns, channels * channel_values, T(0));
          GemmAccumulate<T>(channels * w.kernel_size(), w.in_size(), cg, T(1),
                            {weights + g * cg * ld + m0 * w.kernel_size(), 1, ld},
                            MatrixView<T>{x_g, w.in_size(), 1}, columns, w.in_size(),
                            c.num_threads);
          Col2Im(w, channels, columns, y + (n * s.out_channels + g * mg + m0) * w.out_size(),
                 c.num_threads);
        }
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace

void RegisterConvOps(OpTable& t) {
  t["Conv"] = OpDef{.infer = InferConv, .compute = Conv};
  t["ConvTranspose"] = OpDef{.infer = InferConvTranspose, .compute = ConvTranspose};
}

}  // namespace slimserve::runtime::reference
