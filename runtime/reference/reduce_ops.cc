// Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare, and
// ArgMax / ArgMin.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/reference/common.h"
#include "runtime/reference/nn_ops.h"
#include "runtime/reference/op_registry.h"
#include "runtime/reference/reduction.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// ---- Reduce* ---------------------------------------------------------------

struct ReduceSpec {
  std::vector<int64_t> axes;  // normalized and distinct; empty with noop
  bool keepdims = true;
  bool noop = false;  // empty axes with noop_with_empty_axes: the output is the input
};

// Axes come from the attribute, or from input 1 from ReduceSum-13 and the
// other reductions' opset 18 on. `axes_input` is that input's value, or null
// when it is omitted. Empty axes mean all axes, unless noop_with_empty_axes.
absl::StatusOr<ReduceSpec> ReadReduceSpec(const Node& node, int64_t opset, const Tensor* axes_input,
                                          int64_t rank) {
  const bool from_input = opset >= (node.op_type == "ReduceSum" ? 13 : 18);
  std::vector<int64_t> axes;
  if (!from_input) {
    axes = node.GetInts("axes");
  } else if (axes_input != nullptr) {
    axes = axes_input->ToInt64Vector();
  }
  ReduceSpec spec;
  spec.keepdims = node.GetInt("keepdims", 1) != 0;
  if (axes.empty()) {
    spec.noop = node.GetInt("noop_with_empty_axes", 0) != 0;
    for (int64_t d = 0; d < rank && !spec.noop; ++d) spec.axes.push_back(d);
    return spec;
  }
  ASSIGN_OR_RETURN(spec.axes, NormalizeAxes(node, axes, rank));
  return spec;
}

Shape ReducedShape(const Shape& in, const ReduceSpec& spec) {
  if (spec.noop) return in;
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    const bool reduced =
        std::find(spec.axes.begin(), spec.axes.end(), static_cast<int64_t>(d)) != spec.axes.end();
    if (!reduced) {
      out.push_back(in[d]);
    } else if (spec.keepdims) {
      out.push_back(1);
    }
  }
  return out;
}

absl::Status InferReduce(InferContext& c) {
  const Tensor* axes = c.input(1).constant;
  if (c.input(1).defined() && axes == nullptr) {
    return c.Error("axes input must be known at load time");
  }
  const TensorDesc& x = c.input(0);
  ASSIGN_OR_RETURN(ReduceSpec spec,
                   ReadReduceSpec(c.node, c.opset, axes, static_cast<int64_t>(x.shape.size())));
  c.SetOutput(0, x.dtype, ReducedShape(x.shape, spec));
  return absl::OkStatus();
}

// A double result into T; integers saturate (and NaN becomes 0) because an
// out-of-range float-to-integer conversion is undefined.
template <typename T>
T FromDouble(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) {
      return std::numeric_limits<T>::lowest();
    }
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) {
      return std::numeric_limits<T>::max();
    }
    return static_cast<T>(v);
  }
}

// y[g] = fold.operator()<T>(x, n) for every output element g, where x(r) is
// the r-th of the n input elements reduced into it.
template <typename Fold>
absl::Status Reduce(ComputeContext& c, Fold fold) {
  const Tensor& in = c.input(0);
  const Tensor* axes = c.has_input(1) ? &c.input(1) : nullptr;
  ASSIGN_OR_RETURN(const ReduceSpec spec, ReadReduceSpec(c.node, c.opset, axes, in.rank()));
  if (spec.noop) {
    if (in.byte_size() > 0) std::memcpy(c.outputs[0].raw_data(), in.raw_data(), in.byte_size());
    return absl::OkStatus();
  }
  return VisitNumeric(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    const AxisGroups groups(in.shape(), spec.axes);
    const int64_t n = groups.group_size();
    groups.ForEach(c.num_threads, [&](int64_t g, int64_t base, auto offset) {
      y[g] = fold.template operator()<T>([&](int64_t r) { return x[base + offset(r)]; }, n);
    });
    return absl::OkStatus();
  });
}

// Sum of f(v) over the elements v, as Acc<T>.
template <typename T, typename X, typename F>
Acc<T> SumOf(X x, int64_t n, F f) {
  Acc<T> s = 0;
  for (int64_t r = 0; r < n; ++r) s += f(static_cast<Acc<T>>(x(r)));
  return s;
}

// Sum of f(v) over the elements v, in double whatever T is: for the
// reductions whose result is not a plain integer sum.
template <typename X, typename F>
double DoubleSumOf(X x, int64_t n, F f) {
  double s = 0;
  for (int64_t r = 0; r < n; ++r) s += f(static_cast<double>(x(r)));
  return s;
}

template <typename T, typename X>
T Extreme(X x, int64_t n, bool max) {
  using L = std::numeric_limits<T>;
  T m = L::has_infinity ? (max ? -L::infinity() : L::infinity()) : (max ? L::lowest() : L::max());
  for (int64_t r = 0; r < n && m == m; ++r) {
    const T v = x(r);
    if ((max ? v > m : v < m) || v != v) m = v;  // NaN wins, as in numpy
  }
  return m;
}

absl::Status ReduceSum(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    return static_cast<T>(SumOf<T>(x, n, [](Acc<T> v) { return v; }));
  });
}

absl::Status ReduceSumSquare(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    return static_cast<T>(SumOf<T>(x, n, [](Acc<T> v) { return v * v; }));
  });
}

absl::Status ReduceL1(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    return static_cast<T>(SumOf<T>(x, n, [](Acc<T> v) -> Acc<T> {
      if constexpr (std::is_floating_point_v<T>) {
        return std::fabs(v);
      } else {
        // v is the unsigned image of x; x < 0 when its sign bit is set.
        return std::is_signed_v<T> && static_cast<T>(v) < 0 ? Acc<T>(0) - v : v;
      }
    }));
  });
}

absl::Status ReduceProd(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    Acc<T> p = 1;
    for (int64_t r = 0; r < n; ++r) p *= static_cast<Acc<T>>(x(r));
    return static_cast<T>(p);
  });
}

absl::Status ReduceMax(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) { return Extreme<T>(x, n, true); });
}

absl::Status ReduceMin(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) { return Extreme<T>(x, n, false); });
}

absl::Status ReduceMean(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    return FromDouble<T>(DoubleSumOf(x, n, [](double v) { return v; }) / static_cast<double>(n));
  });
}

absl::Status ReduceL2(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    return FromDouble<T>(std::sqrt(DoubleSumOf(x, n, [](double v) { return v * v; })));
  });
}

absl::Status ReduceLogSum(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    return FromDouble<T>(std::log(DoubleSumOf(x, n, [](double v) { return v; })));
  });
}

absl::Status ReduceLogSumExp(ComputeContext& c) {
  return Reduce(c, []<typename T>(auto x, int64_t n) {
    // Shifted by the maximum so that exp cannot overflow.
    const double m = static_cast<double>(Extreme<T>(x, n, true));
    if (!std::isfinite(m)) return FromDouble<T>(n == 0 ? -INFINITY : m);
    return FromDouble<T>(m +
                         std::log(DoubleSumOf(x, n, [m](double v) { return std::exp(v - m); })));
  });
}

// ---- ArgMax, ArgMin --------------------------------------------------------

absl::Status InferArg(InferContext& c) {
  const Shape& s = c.input(0).shape;
  if (s.empty()) return c.Error("input must have rank >= 1");
  ASSIGN_OR_RETURN(const int64_t axis, AxisAttribute(c.node, 0, s.size()));
  if (s[axis] == 0) return c.Error("cannot take the index of an extreme of an empty axis");
  Shape out = s;
  if (c.node.GetInt("keepdims", 1) != 0) {
    out[axis] = 1;
  } else {
    out.erase(out.begin() + axis);
  }
  c.SetOutput(0, DataType::kInt64, out);
  return absl::OkStatus();
}

absl::Status ArgExtreme(ComputeContext& c, bool max) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const int64_t axis, AxisAttribute(c.node, 0, in.rank()));
  const bool last = c.node.GetInt("select_last_index", 0) != 0;
  return VisitNumeric(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    int64_t* y = c.outputs[0].data<int64_t>();
    const AxisGroups groups(in.shape(), {axis});
    const int64_t n = groups.group_size();
    groups.ForEach(c.num_threads, [&](int64_t g, int64_t base, auto offset) {
      int64_t best = 0;
      T b = x[base];
      for (int64_t r = 1; r < n; ++r) {
        const T v = x[base + offset(r)];
        if (max ? (v > b || (last && v == b)) : (v < b || (last && v == b))) {
          b = v;
          best = r;
        }
      }
      y[g] = best;
    });
    return absl::OkStatus();
  });
}

absl::Status ArgMax(ComputeContext& c) { return ArgExtreme(c, true); }
absl::Status ArgMin(ComputeContext& c) { return ArgExtreme(c, false); }

}  // namespace

void RegisterReduceOps(OpTable& t) {
  for (auto [name, fn] : std::initializer_list<std::pair<const char*, ComputeFn>>{
           {"ReduceSum", ReduceSum},
           {"ReduceSumSquare", ReduceSumSquare},
           {"ReduceL1", ReduceL1},
           {"ReduceL2", ReduceL2},
           {"ReduceMax", ReduceMax},
           {"ReduceMin", ReduceMin},
           {"ReduceProd", ReduceProd},
           {"ReduceMean", ReduceMean},
           {"ReduceLogSum", ReduceLogSum},
           {"ReduceLogSumExp", ReduceLogSumExp}}) {
    // Input 1 (axes) is only read in the opsets where it exists.
    t[name] = OpDef{.infer = InferReduce, .compute = fn, .value_inputs = {1}};
  }
  t["ArgMax"] = OpDef{.infer = InferArg, .compute = ArgMax};
  t["ArgMin"] = OpDef{.infer = InferArg, .compute = ArgMin};
}

}  // namespace slimserve::runtime::reference
