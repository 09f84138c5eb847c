// Neural-network ONNX operators: Gemm, MatMul, Softmax, LogSoftmax, Hardmax,
// and the registration of the families in conv.cc, pool.cc, norm.cc and einsum.cc.
#include "runtime/reference/nn_ops.h"

#include <algorithm>
#include <cmath>

#include "runtime/reference/common.h"
#include "runtime/reference/gemm.h"
#include "runtime/reference/op_registry.h"
#include "runtime/reference/parallel.h"
#include "runtime/reference/reduction.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {

absl::Status CheckInputTypes(InferContext& c, size_t first, size_t last,
                             std::initializer_list<DataType> allowed) {
  const DataType dtype = c.input(first).dtype;
  if (std::find(allowed.begin(), allowed.end(), dtype) == allowed.end()) {
    const std::string message = absl::StrCat("type ", DataTypeName(dtype), " is not supported");
    if (dtype == DataType::kFloat16 || dtype == DataType::kBFloat16) {
      return absl::UnimplementedError(absl::StrCat(c.node.Describe(), ": ", message));
    }
    return c.Error(message);
  }
  for (size_t i = first + 1; i < last; ++i) {
    if (c.input(i).defined() && c.input(i).dtype != dtype) {
      return c.Error(absl::StrCat("input ", i, " has type ", DataTypeName(c.input(i).dtype),
                                  ", input ", first, " ", DataTypeName(dtype)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> AxisAttribute(const Node& node, int64_t fallback, int64_t rank) {
  absl::StatusOr<int64_t> axis = NormalizeAxis(node.GetInt("axis", fallback), rank);
  if (!axis.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", axis.status().message()));
  }
  return axis;
}

absl::StatusOr<std::vector<int64_t>> NormalizeAxes(const Node& node, absl::Span<const int64_t> axes,
                                                   int64_t rank) {
  std::vector<int64_t> normalized;
  for (int64_t a : axes) {
    // NormalizeAxis lets a scalar have axis 0; a reduction axis cannot.
    absl::StatusOr<int64_t> axis = NormalizeAxis(a, rank);
    if (!axis.ok() || rank == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": axis ", a, " is out of range for rank ", rank));
    }
    if (std::find(normalized.begin(), normalized.end(), *axis) != normalized.end()) {
      return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": axis ", a, " repeated"));
    }
    normalized.push_back(*axis);
  }
  return normalized;
}

namespace {

// The types ONNX allows for Gemm and MatMul (besides float16 / bfloat16).
constexpr std::initializer_list<DataType> kGemmTypes = {DataType::kFloat32, DataType::kFloat64,
                                                        DataType::kInt32,   DataType::kInt64,
                                                        DataType::kUint32,  DataType::kUint64};

// ---- Gemm ---------------------------------------------------------------------

absl::Status InferGemm(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 3, kGemmTypes));
  const Shape& a = c.input(0).shape;
  const Shape& b = c.input(1).shape;
  if (a.size() != 2 || b.size() != 2) return c.Error("A and B must be 2-D");
  const bool trans_a = c.node.GetInt("transA", 0) != 0;
  const bool trans_b = c.node.GetInt("transB", 0) != 0;
  const int64_t m = a[trans_a ? 1 : 0], k = a[trans_a ? 0 : 1];
  const int64_t n = b[trans_b ? 0 : 1];
  if (b[trans_b ? 1 : 0] != k) {
    return c.Error(absl::StrCat("cannot multiply ", ShapeToString(a), " and ", ShapeToString(b),
                                " (transA ", trans_a, ", transB ", trans_b, ")"));
  }
  const Shape out = {m, n};
  if (c.input(2).defined()) {
    const Shape& bias = c.input(2).shape;
    // Before opset 7, C broadcasts only when the `broadcast` attribute says so.
    const bool broadcast = c.opset >= 7 || c.node.GetInt("broadcast", 0) != 0;
    absl::StatusOr<Shape> s = BroadcastShapes(bias, out);
    if (broadcast ? !s.ok() || *s != out : bias != out) {
      return c.Error(absl::StrCat("C of shape ", ShapeToString(bias), " does not broadcast to ",
                                  ShapeToString(out)));
    }
  }
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

// Y = alpha * A' * B' + beta * C
absl::Status Gemm(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(1);
  Tensor& y = c.outputs[0];
  const bool trans_a = c.node.GetInt("transA", 0) != 0;
  const bool trans_b = c.node.GetInt("transB", 0) != 0;
  const int64_t m = y.dim(0), n = y.dim(1), k = a.dim(trans_a ? 0 : 1);
  const float alpha = c.node.GetFloat("alpha", 1.0f);
  const float beta = c.node.GetFloat("beta", 1.0f);
  return VisitNumeric(a.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* out = y.data<T>();
    if (c.has_input(2) && beta != 0) {
      const T* bias = c.input(2).data<T>();
      BroadcastIterator it(y.shape(), {c.input(2).shape()});
      const T scale = static_cast<T>(beta);
      for (int64_t i = 0; i < m * n; ++i, it.Next()) out[i] = scale * bias[it.offset(0)];
    } else {
      std::fill_n(out, m * n, T(0));
    }
    const MatrixView<T> av{a.data<T>(), trans_a ? 1 : k, trans_a ? m : 1};
    const MatrixView<T> bv{b.data<T>(), trans_b ? 1 : n, trans_b ? k : 1};
    GemmAccumulate<T>(m, n, k, static_cast<T>(alpha), av, bv, out, n, c.num_threads);
    return absl::OkStatus();
  });
}

// ---- MatMul -------------------------------------------------------------------

// numpy matmul: a 1-D A is a row vector and a 1-D B a column vector, their
// extra dim dropped from the result; leading dims broadcast.
struct MatMulShapes {
  Shape a_batch, b_batch, batch;
  int64_t m = 1, k = 1, n = 1;
};

absl::StatusOr<MatMulShapes> MatMulGeometry(const Shape& a, const Shape& b, Shape* out) {
  if (a.empty() || b.empty()) return absl::InvalidArgumentError("inputs must have rank >= 1");
  MatMulShapes s;
  const size_t ra = a.size(), rb = b.size();
  s.m = ra == 1 ? 1 : a[ra - 2];
  s.k = a[ra - 1];
  const int64_t kb = rb == 1 ? b[0] : b[rb - 2];
  s.n = rb == 1 ? 1 : b[rb - 1];
  if (s.k != kb) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot multiply ", ShapeToString(a), " and ", ShapeToString(b)));
  }
  s.a_batch.assign(a.begin(), a.end() - std::min<size_t>(ra, 2));
  s.b_batch.assign(b.begin(), b.end() - std::min<size_t>(rb, 2));
  ASSIGN_OR_RETURN(s.batch, BroadcastShapes(s.a_batch, s.b_batch));
  *out = s.batch;
  if (ra > 1) out->push_back(s.m);
  if (rb > 1) out->push_back(s.n);
  return s;
}

absl::Status InferMatMul(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 2, kGemmTypes));
  Shape out;
  absl::StatusOr<MatMulShapes> s = MatMulGeometry(c.input(0).shape, c.input(1).shape, &out);
  if (!s.ok()) return c.Error(s.status().message());
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status MatMul(ComputeContext& c) {
  if (c.outputs[0].num_elements() == 0) return absl::OkStatus();
  Shape out_shape;
  ASSIGN_OR_RETURN(const MatMulShapes s,
                   MatMulGeometry(c.input(0).shape(), c.input(1).shape(), &out_shape));
  const int64_t batches = NumElementsUnchecked(s.batch);
  // Matrix index pairs (in A, in B) of every output matrix.
  std::vector<std::pair<int64_t, int64_t>> pairs(batches);
  BroadcastIterator it(s.batch, {s.a_batch, s.b_batch});
  for (int64_t i = 0; i < batches; ++i, it.Next()) pairs[i] = {it.offset(0), it.offset(1)};
  return VisitNumeric(c.input(0).dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* a = c.input(0).data<T>();
    const T* b = c.input(1).data<T>();
    T* y = c.outputs[0].data<T>();
    std::fill_n(y, batches * s.m * s.n, T(0));
    auto multiply = [&](int64_t i, int threads) {
      GemmAccumulate<T>(s.m, s.n, s.k, T(1), {a + pairs[i].first * s.m * s.k, s.k, 1},
                        MatrixView<T>{b + pairs[i].second * s.k * s.n, s.n, 1}, y + i * s.m * s.n,
                        s.n, threads);
    };
    // Many small products (attention heads): one thread per product.
    const double work = double(s.m) * s.n * s.k;
    if (batches > 1 && !WorthThreads(c.num_threads, 2, work)) {
      const bool parallel = WorthThreads(c.num_threads, batches, work * batches);
#pragma omp parallel for num_threads(c.num_threads) if (parallel) schedule(dynamic)
      for (int64_t i = 0; i < batches; ++i) multiply(i, 1);
    } else {
      for (int64_t i = 0; i < batches; ++i) multiply(i, c.num_threads);
    }
    return absl::OkStatus();
  });
}

// ---- Softmax, LogSoftmax, Hardmax -----------------------------------------------

// Before opset 13 the input is coerced to 2-D at `axis` (default 1): the op
// runs over all dims from axis on. From 13, over the one `axis` (default -1).
absl::StatusOr<std::vector<int64_t>> SoftmaxAxes(const Node& node, int64_t opset, int64_t rank) {
  ASSIGN_OR_RETURN(const int64_t axis, AxisAttribute(node, opset < 13 ? 1 : -1, rank));
  if (opset >= 13) return std::vector<int64_t>{axis};
  std::vector<int64_t> axes;
  for (int64_t d = axis; d < rank; ++d) axes.push_back(d);
  return axes;
}

absl::Status InferSoftmax(InferContext& c) {
  RETURN_IF_ERROR(CheckInputTypes(c, 0, 1, kFloatTypes));
  const int64_t rank = static_cast<int64_t>(c.input(0).shape.size());
  if (rank == 0) return c.Error("input must have rank >= 1");
  RETURN_IF_ERROR(SoftmaxAxes(c.node, c.opset, rank).status());
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

enum class SoftmaxKind { kSoftmax, kLogSoftmax, kHardmax };

absl::Status SoftmaxFamily(ComputeContext& c, SoftmaxKind kind) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const std::vector<int64_t> axes, SoftmaxAxes(c.node, c.opset, in.rank()));
  const AxisGroups groups(in.shape(), axes);
  const int64_t n = groups.group_size();
  if (n == 0) return absl::OkStatus();
  return VisitFloat(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    groups.ForEach(c.num_threads, [&](int64_t, int64_t base, auto offset) {
      int64_t arg = 0;
      for (int64_t r = 1; r < n; ++r) {
        if (x[base + offset(r)] > x[base + offset(arg)]) arg = r;
      }
      if (kind == SoftmaxKind::kHardmax) {
        for (int64_t r = 0; r < n; ++r) y[base + offset(r)] = r == arg ? T(1) : T(0);
        return;
      }
      // Shifted by the maximum so that exp cannot overflow.
      const T max = x[base + offset(arg)];
      double sum = 0;
      for (int64_t r = 0; r < n; ++r) {
        const T e = std::exp(x[base + offset(r)] - max);
        sum += e;
        if (kind == SoftmaxKind::kSoftmax) y[base + offset(r)] = e;
      }
      if (kind == SoftmaxKind::kSoftmax) {
        const T scale = static_cast<T>(1.0 / sum);
        for (int64_t r = 0; r < n; ++r) y[base + offset(r)] *= scale;
      } else {
        const double log_sum = std::log(sum);
        for (int64_t r = 0; r < n; ++r) {
          y[base + offset(r)] = static_cast<T>((x[base + offset(r)] - max) - log_sum);
        }
      }
    });
    return absl::OkStatus();
  });
}

absl::Status Softmax(ComputeContext& c) { return SoftmaxFamily(c, SoftmaxKind::kSoftmax); }
absl::Status LogSoftmax(ComputeContext& c) { return SoftmaxFamily(c, SoftmaxKind::kLogSoftmax); }
absl::Status Hardmax(ComputeContext& c) { return SoftmaxFamily(c, SoftmaxKind::kHardmax); }

}  // namespace

void RegisterNnOps(OpTable& t) {
  t["Gemm"] = OpDef{.infer = InferGemm, .compute = Gemm};
  t["MatMul"] = OpDef{.infer = InferMatMul, .compute = MatMul};
  t["Softmax"] = OpDef{.infer = InferSoftmax, .compute = Softmax};
  t["LogSoftmax"] = OpDef{.infer = InferSoftmax, .compute = LogSoftmax};
  t["Hardmax"] = OpDef{.infer = InferSoftmax, .compute = Hardmax};
  RegisterConvOps(t);
  RegisterPoolOps(t);
  RegisterNormOps(t);
  RegisterEinsumOps(t);
}

}  // namespace slimserve::runtime::reference
