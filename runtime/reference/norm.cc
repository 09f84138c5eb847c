// Normalizations: BatchNormalization (inference), InstanceNormalization,
// LayerNormalization, MeanVarianceNormalization, LpNormalization, LRN.
// Statistics are computed in double, two-pass, whatever the tensor type.
#include <cmath>
#include <vector>

#include "runtime/reference/common.h"
#include "runtime/reference/nn_ops.h"
#include "runtime/reference/parallel.h"
#include "runtime/reference/reduction.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

std::vector<int64_t> AxesFrom(int64_t first, int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t d = first; d < rank; ++d) axes.push_back(d);
  return axes;
}

// For every group of `groups`: y = affine(g, r, (x - mean) * inv_std(variance))
// for its r-th element, after on_stats(g, mean, inv_std).
template <typename T, typename InvStd, typename Affine, typename OnStats>
void NormalizeGroups(const T* x, T* y, const AxisGroups& groups, int num_threads, InvStd inv_std,
                     Affine affine, OnStats on_stats) {
  const int64_t n = groups.group_size();
  if (n == 0) return;
  groups.ForEach(num_threads, [&](int64_t g, int64_t base, auto offset) {
    double mean = 0, var = 0;
    for (int64_t r = 0; r < n; ++r) mean += x[base + offset(r)];
    mean /= static_cast<double>(n);
    for (int64_t r = 0; r < n; ++r) {
      const double d = x[base + offset(r)] - mean;
      var += d * d;
    }
    const double inv = inv_std(var / static_cast<double>(n));
    on_stats(g, mean, inv);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t i = base + offset(r);
      y[i] = static_cast<T>(affine(g, r, (x[i] - mean) * inv));
    }
  });
}

auto InvSqrt(double epsilon) {
  return [epsilon](double var) { return 1.0 / std::sqrt(var + epsilon); };
}

// ---- BatchNormalization ----------------------------------------------------------

// Elements per "channel" (the unit sharing one scale, B, mean, var): before
// opset 9 `spatial` = 0 gives every element of an image its own parameters.
// -1, which no parameter matches, when that count overflows (an empty X).
int64_t ParamCount(const Node& node, int64_t opset, const Shape& x) {
  const bool spatial = opset >= 9 || node.GetInt("spatial", 1) != 0;
  return spatial ? x[1] : NumElements(absl::MakeConstSpan(x).subspan(1)).value_or(-1);
}

absl::Status InferBatchNorm(InferContext& c) {
  if (c.node.GetInt("training_mode", 0) != 0) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": training mode is not supported"));
  }
  for (size_t k = 1; k < c.node.outputs.size(); ++k) {
    if (!c.node.outputs[k].empty()) {
      return absl::UnimplementedError(
          absl::StrCat(c.node.Describe(),
                       ": the training-mode outputs (running mean, variance) are not supported"));
    }
  }
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, kFloatTypes));
  const Shape& x = c.input(0).shape;
  if (x.size() < 2) return c.Error("input must be [N, C, ...]");
  const int64_t params = ParamCount(c.node, c.opset, x);
  for (size_t i = 1; i < 5; ++i) {
    const TensorDesc& p = c.input(i);
    // Parameter types may differ from X's from opset 15 on: read them as double.
    RETURN_IF_ERROR(CheckInputTypes(c, i, i + 1, kFloatTypes));
    if (NumElementsUnchecked(p.shape) != params) {
      return c.Error(absl::StrCat("input ", i, " of shape ", ShapeToString(p.shape), " for ",
                                  params, " channels"));
    }
  }
  c.SetOutput(0, c.input(0).dtype, x);
  return absl::OkStatus();
}

// y = x * a + b per channel, a = scale / sqrt(var + eps), b = B - mean * a.
absl::Status BatchNorm(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  const Tensor& in = c.input(0);
  const int64_t params = ParamCount(c.node, c.opset, in.shape());
  const double epsilon = c.node.GetFloat("epsilon", 1e-5f);
  std::vector<double> a(params), b(params);
  for (int64_t i = 0; i < params; ++i) {
    a[i] = c.input(1).GetDouble(i) / std::sqrt(c.input(4).GetDouble(i) + epsilon);
    b[i] = c.input(2).GetDouble(i) - c.input(3).GetDouble(i) * a[i];
  }
  const int64_t planes = in.dim(0) * params;
  const int64_t inner = planes == 0 ? 0 : in.num_elements() / planes;
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    const bool parallel = WorthThreads(c.num_threads, planes, in.num_elements());
#pragma omp parallel for num_threads(c.num_threads) if (parallel)
    for (int64_t p = 0; p < planes; ++p) {
      const T scale = static_cast<T>(a[p % params]), shift = static_cast<T>(b[p % params]);
      for (int64_t i = p * inner; i < (p + 1) * inner; ++i) y[i] = x[i] * scale + shift;
    }
    return absl::OkStatus();
  });
}

// ---- InstanceNormalization ---------------------------------------------------------

absl::Status InferInstanceNorm(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 3, kFloatTypes));
  const Shape& x = c.input(0).shape;
  if (x.size() < 2) return c.Error("input must be [N, C, ...]");
  if (c.input(1).shape != Shape{x[1]} || c.input(2).shape != Shape{x[1]}) {
    return c.Error(absl::StrCat("scale and B must be [", x[1], "]"));
  }
  c.SetOutput(0, c.input(0).dtype, x);
  return absl::OkStatus();
}

absl::Status InstanceNorm(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const int64_t channels = in.dim(1);
  const AxisGroups groups(in.shape(), AxesFrom(2, in.rank()));
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* scale = c.input(1).data<T>();
    const T* bias = c.input(2).data<T>();
    NormalizeGroups(
        in.data<T>(), c.outputs[0].data<T>(), groups, c.num_threads,
        InvSqrt(c.node.GetFloat("epsilon", 1e-5f)),
        [&](int64_t g, int64_t, double v) { return v * scale[g % channels] + bias[g % channels]; },
        [](int64_t, double, double) {});
    return absl::OkStatus();
  });
}

// ---- LayerNormalization --------------------------------------------------------------

absl::Status InferLayerNorm(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 3, kFloatTypes));
  const Shape& x = c.input(0).shape;
  const int64_t rank = static_cast<int64_t>(x.size());
  if (rank == 0) return c.Error("input must have rank >= 1");
  ASSIGN_OR_RETURN(const int64_t axis, AxisAttribute(c.node, -1, rank));
  const Shape normalized(x.begin() + axis, x.end());
  for (size_t i = 1; i < 3; ++i) {
    if (!c.input(i).defined()) continue;
    absl::StatusOr<Shape> s = BroadcastShapes(c.input(i).shape, normalized);
    if (!s.ok() || *s != normalized) {
      return c.Error(absl::StrCat("input ", i, " of shape ", ShapeToString(c.input(i).shape),
                                  " does not broadcast to ", ShapeToString(normalized)));
    }
  }
  const auto stash = static_cast<DataType>(c.node.GetInt("stash_type", 1));
  if (stash != DataType::kFloat32 && stash != DataType::kFloat64) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": stash_type ", DataTypeName(stash), " is not supported"));
  }
  Shape stats(x.begin(), x.begin() + axis);
  stats.resize(x.size(), 1);
  c.SetOutput(0, c.input(0).dtype, x);
  c.SetOutput(1, stash, stats);  // Mean
  c.SetOutput(2, stash, stats);  // InvStdDev
  return absl::OkStatus();
}

// Input i broadcast to `shape`, as double; `fill` when it is omitted.
std::vector<double> Expand(ComputeContext& c, size_t i, const Shape& shape, double fill) {
  std::vector<double> v(NumElementsUnchecked(shape), fill);
  if (!c.has_input(i)) return v;
  BroadcastIterator it(shape, {c.input(i).shape()});
  for (size_t k = 0; k < v.size(); ++k, it.Next()) v[k] = c.input(i).GetDouble(it.offset(0));
  return v;
}

// Writes value to element g of a float or double tensor, if it is requested.
void SetStat(ComputeContext& c, size_t output, int64_t g, double value) {
  if (output >= c.outputs.size() || !c.outputs[output].defined()) return;
  Tensor& t = c.outputs[output];
  if (t.dtype() == DataType::kFloat64) {
    t.data<double>()[g] = value;
  } else {
    t.data<float>()[g] = static_cast<float>(value);
  }
}

absl::Status LayerNorm(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const int64_t axis, AxisAttribute(c.node, -1, in.rank()));
  const Shape normalized(in.shape().begin() + axis, in.shape().end());
  const std::vector<double> scale = Expand(c, 1, normalized, 1.0);
  const std::vector<double> bias = Expand(c, 2, normalized, 0.0);
  const AxisGroups groups(in.shape(), AxesFrom(axis, in.rank()));
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    NormalizeGroups(
        in.data<T>(), c.outputs[0].data<T>(), groups, c.num_threads,
        InvSqrt(c.node.GetFloat("epsilon", 1e-5f)),
        [&](int64_t, int64_t r, double v) { return v * scale[r] + bias[r]; },
        [&](int64_t g, double mean, double inv) {
          SetStat(c, 1, g, mean);
          SetStat(c, 2, g, inv);
        });
    return absl::OkStatus();
  });
}

// ---- MeanVarianceNormalization -------------------------------------------------------

absl::StatusOr<std::vector<int64_t>> MvnAxes(const Node& node, int64_t rank) {
  return NormalizeAxes(node, node.GetInts("axes", {0, 2, 3}), rank);
}

absl::Status InferMvn(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, kFloatTypes));
  RETURN_IF_ERROR(MvnAxes(c.node, c.input(0).shape.size()).status());
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

// y = (x - mean) / (sqrt(variance) + 1e-9), as ONNX's function body defines it.
absl::Status Mvn(ComputeContext& c) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const std::vector<int64_t> axes, MvnAxes(c.node, in.rank()));
  const AxisGroups groups(in.shape(), axes);
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    NormalizeGroups(
        in.data<T>(), c.outputs[0].data<T>(), groups, c.num_threads,
        [](double var) { return 1.0 / (std::sqrt(var) + 1e-9); },
        [](int64_t, int64_t, double v) { return v; }, [](int64_t, double, double) {});
    return absl::OkStatus();
  });
}

// ---- LpNormalization, LRN ----------------------------------------------------------

absl::Status InferLpNorm(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, kFloatTypes));
  const int64_t rank = static_cast<int64_t>(c.input(0).shape.size());
  if (rank == 0) return c.Error("input must have rank >= 1");
  RETURN_IF_ERROR(AxisAttribute(c.node, -1, rank).status());
  const int64_t p = c.node.GetInt("p", 2);
  if (p != 1 && p != 2) return c.Error(absl::StrCat("p must be 1 or 2, not ", p));
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

// y = x / ||x||_p along axis; a zero norm gives zeros, not NaN.
absl::Status LpNorm(ComputeContext& c) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const int64_t axis, AxisAttribute(c.node, -1, in.rank()));
  const bool l1 = c.node.GetInt("p", 2) == 1;
  const AxisGroups groups(in.shape(), {axis});
  const int64_t n = groups.group_size();
  if (n == 0) return absl::OkStatus();
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    groups.ForEach(c.num_threads, [&](int64_t, int64_t base, auto offset) {
      double norm = 0;
      for (int64_t r = 0; r < n; ++r) {
        const double v = x[base + offset(r)];
        norm += l1 ? std::fabs(v) : v * v;
      }
      if (!l1) norm = std::sqrt(norm);
      const double inv = norm == 0 ? 0.0 : 1.0 / norm;
      for (int64_t r = 0; r < n; ++r)
        y[base + offset(r)] = static_cast<T>(x[base + offset(r)] * inv);
    });
    return absl::OkStatus();
  });
}

absl::Status InferLrn(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, kFloatTypes));
  if (c.input(0).shape.size() < 2) return c.Error("input must be [N, C, ...]");
  if (c.node.GetInt("size", 0) < 1) return c.Error("size must be a positive integer");
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

// y = x / (bias + alpha / size * sum of x^2 over the nearby channels)^beta.
absl::Status Lrn(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  const Tensor& in = c.input(0);
  const int64_t size = c.node.GetInt("size", 1);
  const double alpha = c.node.GetFloat("alpha", 1e-4f), beta = c.node.GetFloat("beta", 0.75f);
  const double bias = c.node.GetFloat("bias", 1.0f);
  const int64_t channels = in.dim(1);
  const int64_t planes = in.dim(0) * channels;
  const int64_t inner = planes == 0 ? 0 : in.num_elements() / planes;
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    const bool parallel = WorthThreads(c.num_threads, planes, double(in.num_elements()) * size);
#pragma omp parallel for num_threads(c.num_threads) if (parallel)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t ch = p % channels, image = p - ch;
      const int64_t first = std::max<int64_t>(0, ch - (size - 1) / 2);
      const int64_t last = std::min(channels - 1, ch + size / 2);
      std::vector<double> sum(inner, 0.0);
      for (int64_t k = first; k <= last; ++k) {
        const T* src = x + (image + k) * inner;
        for (int64_t i = 0; i < inner; ++i) sum[i] += static_cast<double>(src[i]) * src[i];
      }
      for (int64_t i = 0; i < inner; ++i) {
        y[p * inner + i] =
            static_cast<T>(x[p * inner + i] / std::pow(bias + alpha / size * sum[i], beta));
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace

void RegisterNormOps(OpTable& t) {
  t["BatchNormalization"] = OpDef{.infer = InferBatchNorm, .compute = BatchNorm};
  t["InstanceNormalization"] = OpDef{.infer = InferInstanceNorm, .compute = InstanceNorm};
  t["LayerNormalization"] = OpDef{.infer = InferLayerNorm, .compute = LayerNorm};
  t["MeanVarianceNormalization"] = OpDef{.infer = InferMvn, .compute = Mvn};
  t["LpNormalization"] = OpDef{.infer = InferLpNorm, .compute = LpNorm};
  t["LRN"] = OpDef{.infer = InferLrn, .compute = Lrn};
}

}  // namespace slimserve::runtime::reference
