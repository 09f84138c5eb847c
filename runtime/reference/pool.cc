// Pooling: MaxPool (with optional Indices), AveragePool and LpPool over 1-3
// spatial dims, and GlobalAveragePool, GlobalMaxPool, GlobalLpPool.
#include <cmath>
#include <limits>

#include "runtime/reference/common.h"
#include "runtime/reference/nn_ops.h"
#include "runtime/reference/parallel.h"
#include "runtime/reference/reduction.h"
#include "runtime/reference/window.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

absl::StatusOr<Window> PoolWindow(const Node& node, const Shape& x) {
  if (x.size() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": input ", ShapeToString(x), " must be [N, C, spatial...]"));
  }
  const std::vector<int64_t> kernel = node.GetInts("kernel_shape");
  ASSIGN_OR_RETURN(Window w, ParseWindow(node, absl::MakeConstSpan(x).subspan(2), kernel));
  RETURN_IF_ERROR(SetForwardOutput(node, node.GetInt("ceil_mode", 0) != 0, w));
  return w;
}

// The taps of one output position's window that fall inside the input.
struct Taps {
  const Window& w;
  Window::Dims origin;  // input position of tap 0, per dim
  Window::Dims lo, hi;  // valid taps [lo, hi), per dim

  int64_t count() const { return (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]); }
  // Taps inside the padded input, the divisor of AveragePool's count_include_pad.
  int64_t padded_count() const {
    int64_t n = 1;
    for (int d = 0; d < kWindowDims; ++d) {
      const auto [a, b] = InsideRange(w.kernel[d], origin[d] + w.pad_begin[d], w.dilation[d],
                                      w.in[d] + w.pad_begin[d] + w.pad_end[d]);
      n *= b - a;
    }
    return n;
  }
  // f(i) for the flat spatial index i of every valid tap.
  template <typename F>
  void ForEach(F f) const {
    for (int64_t kz = lo[0]; kz < hi[0]; ++kz) {
      const int64_t iz = origin[0] + kz * w.dilation[0];
      for (int64_t ky = lo[1]; ky < hi[1]; ++ky) {
        const int64_t row = (iz * w.in[1] + origin[1] + ky * w.dilation[1]) * w.in[2];
        for (int64_t kx = lo[2]; kx < hi[2]; ++kx) f(row + origin[2] + kx * w.dilation[2]);
      }
    }
  }
};

// f(plane, output index, taps) for every output position of every (n, c)
// plane, parallel over planes.
template <typename F>
void ForEachWindow(const Window& w, int64_t planes, int num_threads, F f) {
  const int64_t out_plane = w.out_size();
  const bool parallel =
      WorthThreads(num_threads, planes, double(planes) * out_plane * w.kernel_size());
#pragma omp parallel for num_threads(num_threads) if (parallel)
  for (int64_t p = 0; p < planes; ++p) {
    Taps t{w, {}, {}, {}};
    int64_t o = p * out_plane;
    for (int64_t oz = 0; oz < w.out[0]; ++oz) {
      for (int64_t oy = 0; oy < w.out[1]; ++oy) {
        for (int64_t ox = 0; ox < w.out[2]; ++ox) {
          const int64_t pos[3] = {oz, oy, ox};
          for (int d = 0; d < kWindowDims; ++d) {
            t.origin[d] = pos[d] * w.stride[d] - w.pad_begin[d];
            std::tie(t.lo[d], t.hi[d]) =
                InsideRange(w.kernel[d], t.origin[d], w.dilation[d], w.in[d]);
          }
          f(p, o++, t);
        }
      }
    }
  }
}

absl::Status InferPoolAs(InferContext& c, std::initializer_list<DataType> types) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, types));
  const Shape& x = c.input(0).shape;
  ASSIGN_OR_RETURN(const Window w, PoolWindow(c.node, x));
  Shape out = {x[0], x[1]};
  for (int64_t d : w.Spatial(w.out)) out.push_back(d);
  c.SetOutput(0, c.input(0).dtype, out);
  c.SetOutput(1, DataType::kInt64, out);  // MaxPool's Indices
  return absl::OkStatus();
}

absl::Status InferPool(InferContext& c) { return InferPoolAs(c, kFloatTypes); }
absl::Status InferMaxPool(InferContext& c) {
  return InferPoolAs(c,
                     {DataType::kFloat32, DataType::kFloat64, DataType::kInt8, DataType::kUint8});
}

absl::Status MaxPool(ComputeContext& c) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const Window w, PoolWindow(c.node, in.shape()));
  int64_t* indices =
      c.outputs.size() > 1 && c.outputs[1].defined() ? c.outputs[1].data<int64_t>() : nullptr;
  // Indices are flat over the input; storage_order 1 flattens spatial dims
  // column-major (planes stay row-major).
  const bool column_major = c.node.GetInt("storage_order", 0) != 0;
  auto flat = [&](int64_t i) {
    if (!column_major) return i;
    const int64_t z = i / (w.in[1] * w.in[2]), y = i / w.in[2] % w.in[1], x = i % w.in[2];
    return (x * w.in[1] + y) * w.in[0] + z;
  };
  return VisitNumeric(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    const int64_t in_plane = w.in_size();
    ForEachWindow(w, in.dim(0) * in.dim(1), c.num_threads,
                  [&](int64_t p, int64_t o, const Taps& t) {
                    const T* plane = x + p * in_plane;
                    T best = std::numeric_limits<T>::lowest();
                    int64_t arg = -1;
                    t.ForEach([&](int64_t i) {
                      if (arg < 0 || plane[i] > best) {
                        best = plane[i];
                        arg = i;
                      }
                    });
                    y[o] = best;
                    if (indices != nullptr)
                      indices[o] = p * in_plane + flat(std::max<int64_t>(arg, 0));
                  });
    return absl::OkStatus();
  });
}

// y = finish(sum of term(x) over the window's taps, taps): the float pools.
template <typename Term, typename Finish>
absl::Status SumPool(ComputeContext& c, Term term, Finish finish) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const Window w, PoolWindow(c.node, in.shape()));
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    ForEachWindow(w, in.dim(0) * in.dim(1), c.num_threads,
                  [&](int64_t p, int64_t o, const Taps& t) {
                    const T* plane = x + p * w.in_size();
                    double sum = 0;
                    t.ForEach([&](int64_t i) { sum += term(static_cast<double>(plane[i])); });
                    y[o] = static_cast<T>(finish(sum, t));
                  });
    return absl::OkStatus();
  });
}

absl::Status AveragePool(ComputeContext& c) {
  const bool include_pad = c.node.GetInt("count_include_pad", 0) != 0;
  return SumPool(
      c, [](double v) { return v; },
      [include_pad](double sum, const Taps& t) {
        return sum / static_cast<double>(include_pad ? t.padded_count() : t.count());
      });
}

// LpPool's p: a float attribute in opset 1, an int from opset 2.
double ExponentP(const Node& node) {
  auto it = node.attributes.find("p");
  if (it == node.attributes.end()) return 2.0;
  return it->second.type == Attribute::Type::kFloat ? it->second.f
                                                    : static_cast<double>(it->second.i);
}

absl::Status LpPool(ComputeContext& c) {
  const double p = ExponentP(c.node);
  return SumPool(
      c, [p](double v) { return std::pow(std::fabs(v), p); },
      [p](double sum, const Taps&) { return std::pow(sum, 1.0 / p); });
}

// ---- Global pools ---------------------------------------------------------------

std::vector<int64_t> SpatialAxes(int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t d = 2; d < rank; ++d) axes.push_back(d);
  return axes;
}

absl::Status InferGlobalPool(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, kFloatTypes));
  Shape out = c.input(0).shape;
  if (out.size() < 2) return c.Error("input must be [N, C, spatial...]");
  std::fill(out.begin() + 2, out.end(), 1);
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

// y[n, c] = fold over the (n, c) plane; fold(x, size) gets x(r), r < size.
template <typename Fold>
absl::Status GlobalPool(ComputeContext& c, Fold fold) {
  const Tensor& in = c.input(0);
  const AxisGroups groups(in.shape(), SpatialAxes(in.rank()));
  const int64_t n = groups.group_size();
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    groups.ForEach(c.num_threads, [&](int64_t g, int64_t base, auto offset) {
      y[g] = static_cast<T>(
          fold([&](int64_t r) { return static_cast<double>(x[base + offset(r)]); }, n));
    });
    return absl::OkStatus();
  });
}

absl::Status GlobalAveragePool(ComputeContext& c) {
  return GlobalPool(c, [](auto x, int64_t n) {
    double sum = 0;
    for (int64_t r = 0; r < n; ++r) sum += x(r);
    return sum / static_cast<double>(n);
  });
}

absl::Status GlobalMaxPool(ComputeContext& c) {
  return GlobalPool(c, [](auto x, int64_t n) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t r = 0; r < n; ++r) m = std::max(m, x(r));
    return m;
  });
}

absl::Status GlobalLpPool(ComputeContext& c) {
  const double p = ExponentP(c.node);
  return GlobalPool(c, [p](auto x, int64_t n) {
    double sum = 0;
    for (int64_t r = 0; r < n; ++r) sum += std::pow(std::fabs(x(r)), p);
    return std::pow(sum, 1.0 / p);
  });
}

}  // namespace

void RegisterPoolOps(OpTable& t) {
  t["MaxPool"] = OpDef{.infer = InferMaxPool, .compute = MaxPool};
  t["AveragePool"] = OpDef{.infer = InferPool, .compute = AveragePool};
  t["LpPool"] = OpDef{.infer = InferPool, .compute = LpPool};
  t["GlobalAveragePool"] = OpDef{.infer = InferGlobalPool, .compute = GlobalAveragePool};
  t["GlobalMaxPool"] = OpDef{.infer = InferGlobalPool, .compute = GlobalMaxPool};
  t["GlobalLpPool"] = OpDef{.infer = InferGlobalPool, .compute = GlobalLpPool};
}

}  // namespace slimserve::runtime::reference
