// ONNX operators that address elements through index tensors: Gather,
// GatherElements, GatherND, ScatterElements (and its old name Scatter),
// ScatterND and OneHot. Index values are only known when a node runs, so
// kernels check each one and fail with InvalidArgument when it is out of range.
#include <algorithm>
#include <cstring>
#include <string>

#include "runtime/reference/tensor_ops.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// Maps a possibly negative index into [0, n); false when it is out of range.
bool WrapIndex(int64_t& i, int64_t n) {
  if (i < 0) i += n;
  return i >= 0 && i < n;
}

absl::Status IndexError(const ComputeContext& c, int64_t index, int64_t n) {
  return c.Error(absl::StrCat("index ", index, " out of range [", -n, ", ", n, ")"));
}

// ---- Gather, GatherElements, GatherND and the Scatters ------------------------

absl::Status InferGather(InferContext& c) {
  const Shape& data = c.input(0).shape;
  const Shape& indices = c.input(1).shape;
  if (!IsIndexType(c.input(1).dtype)) return c.Error("indices must be int32 or int64");
  ASSIGN_OR_RETURN(int64_t axis, AxisOf(c, c.node.GetInt("axis", 0), data.size()));
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), indices.begin(), indices.end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status Gather(ComputeContext& c) {
  const Tensor& data = c.input(0);
  const Tensor& indices = c.input(1);
  const int64_t axis = NormalizeAxis(c.node.GetInt("axis", 0), data.rank()).value();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data.dim(d);
  for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.dim(d);
  const int64_t n = data.dim(axis);
  const size_t bytes = inner * DataTypeSize(data.dtype());
  const int64_t count = indices.num_elements();
  const char* src = static_cast<const char*>(data.raw_data());
  char* dst = static_cast<char*>(c.outputs[0].raw_data());
  for (int64_t k = 0; k < count; ++k) {
    int64_t idx = indices.GetInt(k);
    if (!WrapIndex(idx, n)) return IndexError(c, indices.GetInt(k), n);
    for (int64_t o = 0; o < outer; ++o) {
      CopyBytes(dst + (o * count + k) * bytes, src + (o * n + idx) * bytes, bytes);
    }
  }
  return absl::OkStatus();
}

// How a scatter combines an update with the element it lands on.
enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

template <typename Ctx>
absl::StatusOr<Reduction> ReductionOf(const Ctx& c) {
  const std::string r = c.node.GetString("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  return c.Error(absl::StrCat("unknown reduction '", r, "'"));
}

template <typename T>
T Combine(Reduction r, T old, T update) {
  switch (r) {
    case Reduction::kAdd:
      return WrapAdd(old, update);
    case Reduction::kMul:
      return WrapMul(old, update);
    case Reduction::kMax:
      return std::max(old, update);
    case Reduction::kMin:
      return std::min(old, update);
    case Reduction::kNone:
      break;
  }
  return update;
}

// Plain assignment moves bits (any type); a reduction needs arithmetic types.
template <typename F>
absl::Status VisitScatter(DataType dtype, Reduction r, F&& f) {
  return r == Reduction::kNone ? VisitBytes(dtype, f) : VisitNumeric(dtype, f);
}

// GatherElements / ScatterElements: indices (and updates) have data's rank and
// no dim larger than data's off the axis, so every coordinate but the indexed
// one is in range. Returns the axis.
absl::StatusOr<int64_t> CheckElementIndices(InferContext& c) {
  const Shape& data = c.input(0).shape;
  const Shape& indices = c.input(1).shape;
  if (!IsIndexType(c.input(1).dtype)) return c.Error("indices must be int32 or int64");
  ASSIGN_OR_RETURN(int64_t axis, AxisOf(c, c.node.GetInt("axis", 0), data.size()));
  bool fits = indices.size() == data.size();
  for (size_t d = 0; fits && d < data.size(); ++d) {
    fits = static_cast<int64_t>(d) == axis || indices[d] <= data[d];
  }
  if (!fits) {
    return c.Error(absl::StrCat("indices of shape ", ShapeToString(indices),
                                " do not fit data of shape ", ShapeToString(data), " off axis ",
                                axis));
  }
  return axis;
}

// Calls f(k, offset) for each element k of `indices`, with the data element it
// addresses: k's own coordinates, but indices[k] along `axis`.
template <typename F>
absl::Status ForEachElementIndex(const ComputeContext& c, const Tensor& indices, const Shape& data,
                                 int64_t axis, F f) {
  const std::vector<int64_t> strides = Strides(data);
  const int64_t rank = indices.rank(), n = data[axis];
  std::vector<int64_t> coord(rank, 0);
  int64_t base = 0;  // offset of coord, without the axis term
  for (int64_t k = 0; k < indices.num_elements(); ++k) {
    int64_t i = indices.GetInt(k);
    if (!WrapIndex(i, n)) return IndexError(c, indices.GetInt(k), n);
    f(k, base + i * strides[axis]);
    for (int64_t d = rank - 1; d >= 0; --d) {
      const int64_t stride = d == axis ? 0 : strides[d];
      if (++coord[d] < indices.dim(d)) {
        base += stride;
        break;
      }
      base -= stride * (indices.dim(d) - 1);
      coord[d] = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status InferGatherElements(InferContext& c) {
  RETURN_IF_ERROR(CheckElementIndices(c).status());
  c.SetOutput(0, c.input(0).dtype, c.input(1).shape);
  return absl::OkStatus();
}

absl::Status GatherElements(ComputeContext& c) {
  const Tensor& data = c.input(0);
  const int64_t axis = NormalizeAxis(c.node.GetInt("axis", 0), data.rank()).value();
  return VisitBytes(data.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = data.data<T>();
    T* y = c.outputs[0].data<T>();
    return ForEachElementIndex(c, c.input(1), data.shape(), axis,
                               [&](int64_t k, int64_t offset) { y[k] = x[offset]; });
  });
}

absl::Status InferScatterElements(InferContext& c) {
  RETURN_IF_ERROR(CheckElementIndices(c).status());
  RETURN_IF_ERROR(ReductionOf(c).status());
  if (c.input(2).shape != c.input(1).shape || c.input(2).dtype != c.input(0).dtype) {
    return c.Error("updates must have the shape of indices and the type of data");
  }
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status ScatterElements(ComputeContext& c) {
  const Tensor& data = c.input(0);
  Tensor& out = c.outputs[0];
  ASSIGN_OR_RETURN(const Reduction r, ReductionOf(c));
  const int64_t axis = NormalizeAxis(c.node.GetInt("axis", 0), data.rank()).value();
  CopyBytes(out.raw_data(), data.raw_data(), out.byte_size());
  return VisitScatter(data.dtype(), r, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* u = c.input(2).data<T>();
    T* y = out.data<T>();
    return ForEachElementIndex(c, c.input(1), data.shape(), axis, [&](int64_t k, int64_t offset) {
      y[offset] = Combine(r, y[offset], u[k]);
    });
  });
}

// GatherND / ScatterND: each row of `indices` (its last dim, k long) addresses
// a slice of data through data's first k dims after the batch_dims leading
// ones, which data and indices share. Returns k.
absl::StatusOr<int64_t> CheckNdIndices(InferContext& c, int64_t batch_dims) {
  const Shape& data = c.input(0).shape;
  const Shape& indices = c.input(1).shape;
  if (!IsIndexType(c.input(1).dtype)) return c.Error("indices must be int32 or int64");
  const int64_t r = static_cast<int64_t>(data.size()), q = static_cast<int64_t>(indices.size());
  if (q < 1 || batch_dims < 0 || batch_dims >= std::min(q, r)) {
    return c.Error("indices need rank 1 or more and batch_dims must be below both ranks");
  }
  const int64_t k = indices[q - 1];
  if (k > r - batch_dims || !std::equal(data.begin(), data.begin() + batch_dims, indices.begin())) {
    return c.Error(absl::StrCat("indices of shape ", ShapeToString(indices),
                                " do not index data of shape ", ShapeToString(data)));
  }
  return k;
}

// indices.shape[:-1] + data.shape[batch_dims + k:].
Shape NdSliceShape(const Shape& data, const Shape& indices, int64_t batch_dims, int64_t k) {
  Shape out(indices.begin(), indices.end() - 1);
  out.insert(out.end(), data.begin() + batch_dims + k, data.end());
  return out;
}

// Calls f(g, offset) for each row g of `indices` with the element offset of
// the data slice it addresses.
template <typename F>
absl::Status ForEachNdIndex(const ComputeContext& c, const Tensor& indices, const Shape& data,
                            int64_t batch_dims, F f) {
  const Shape& shape = indices.shape();
  const int64_t k = shape.back();
  const std::vector<int64_t> strides = Strides(data);
  const int64_t rows = NumElementsUnchecked(absl::MakeSpan(shape).subspan(0, shape.size() - 1));
  const int64_t rows_per_batch = NumElementsUnchecked(
      absl::MakeSpan(shape).subspan(batch_dims, shape.size() - 1 - batch_dims));
  const int64_t batch_stride = batch_dims > 0 ? strides[batch_dims - 1] : 0;
  for (int64_t g = 0; g < rows; ++g) {
    int64_t offset = g / rows_per_batch * batch_stride;
    for (int64_t j = 0; j < k; ++j) {
      int64_t i = indices.GetInt(g * k + j);
      const int64_t n = data[batch_dims + j];
      if (!WrapIndex(i, n)) return IndexError(c, indices.GetInt(g * k + j), n);
      offset += i * strides[batch_dims + j];
    }
    f(g, offset);
  }
  return absl::OkStatus();
}

absl::Status InferGatherND(InferContext& c) {
  const int64_t batch_dims = c.node.GetInt("batch_dims", 0);
  ASSIGN_OR_RETURN(const int64_t k, CheckNdIndices(c, batch_dims));
  c.SetOutput(0, c.input(0).dtype, NdSliceShape(c.input(0).shape, c.input(1).shape, batch_dims, k));
  return absl::OkStatus();
}

absl::Status GatherND(ComputeContext& c) {
  const Tensor& data = c.input(0);
  const int64_t batch_dims = c.node.GetInt("batch_dims", 0);
  const int64_t k = c.input(1).shape().back();
  const size_t elem = DataTypeSize(data.dtype());
  const size_t bytes =
      NumElementsUnchecked(absl::MakeSpan(data.shape()).subspan(batch_dims + k)) * elem;
  const char* src = static_cast<const char*>(data.raw_data());
  char* dst = static_cast<char*>(c.outputs[0].raw_data());
  return ForEachNdIndex(c, c.input(1), data.shape(), batch_dims, [&](int64_t g, int64_t offset) {
    CopyBytes(dst + g * bytes, src + offset * elem, bytes);
  });
}

absl::Status InferScatterND(InferContext& c) {
  ASSIGN_OR_RETURN(const int64_t k, CheckNdIndices(c, 0));
  RETURN_IF_ERROR(ReductionOf(c).status());
  const Shape updates = NdSliceShape(c.input(0).shape, c.input(1).shape, 0, k);
  if (c.input(2).shape != updates || c.input(2).dtype != c.input(0).dtype) {
    return c.Error(
        absl::StrCat("updates must have shape ", ShapeToString(updates), " and the type of data"));
  }
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status ScatterND(ComputeContext& c) {
  const Tensor& data = c.input(0);
  Tensor& out = c.outputs[0];
  ASSIGN_OR_RETURN(const Reduction r, ReductionOf(c));
  const int64_t k = c.input(1).shape().back();
  const int64_t slice = NumElementsUnchecked(absl::MakeSpan(data.shape()).subspan(k));
  CopyBytes(out.raw_data(), data.raw_data(), out.byte_size());
  return VisitScatter(data.dtype(), r, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* u = c.input(2).data<T>();
    T* y = out.data<T>();
    return ForEachNdIndex(c, c.input(1), data.shape(), 0, [&](int64_t g, int64_t offset) {
      for (int64_t e = 0; e < slice; ++e) {
        y[offset + e] = Combine(r, y[offset + e], u[g * slice + e]);
      }
    });
  });
}

// ---- OneHot ---------------------------------------------------------------------

template <typename Ctx>
absl::StatusOr<int64_t> OneHotDepth(const Ctx& c) {
  ASSIGN_OR_RETURN(const Tensor* t, ValueOf(c, 1));
  if (t == nullptr || t->num_elements() != 1) return c.Error("depth must have one element");
  const double depth = t->GetDouble();
  if (!(depth >= 1 && depth < 9e15)) return c.Error(absl::StrCat("invalid depth ", depth));
  return static_cast<int64_t>(depth);
}

absl::Status InferOneHot(InferContext& c) {
  const Shape& indices = c.input(0).shape;
  // Indices are read as doubles, which Tensor::GetDouble does not decode from 16-bit floats.
  if (c.input(0).dtype == DataType::kFloat16 || c.input(0).dtype == DataType::kBFloat16) {
    return absl::UnimplementedError(absl::StrCat(c.node.Describe(), ": indices of type ",
                                                 DataTypeName(c.input(0).dtype),
                                                 " are not supported"));
  }
  ASSIGN_OR_RETURN(const int64_t depth, OneHotDepth(c));
  ASSIGN_OR_RETURN(const int64_t axis, AxisOf(c, c.node.GetInt("axis", -1), indices.size() + 1));
  if (NumElementsUnchecked(c.input(2).shape) != 2) return c.Error("values must be [off, on]");
  Shape out = indices;
  out.insert(out.begin() + axis, depth);
  c.SetOutput(0, c.input(2).dtype, out);
  return absl::OkStatus();
}

absl::Status OneHot(ComputeContext& c) {
  const Tensor& indices = c.input(0);
  Tensor& out = c.outputs[0];
  ASSIGN_OR_RETURN(const int64_t depth, OneHotDepth(c));
  const int64_t axis = NormalizeAxis(c.node.GetInt("axis", -1), out.rank()).value();
  int64_t inner = 1;  // indices elements per step along `axis`
  for (int64_t d = axis; d < indices.rank(); ++d) inner *= indices.dim(d);
  const char* values = static_cast<const char*>(c.input(2).raw_data());
  RETURN_IF_ERROR(Fill(out, values));
  return VisitBytes(out.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T on;
    std::memcpy(&on, values + sizeof(T), sizeof(T));
    for (int64_t k = 0; k < indices.num_elements(); ++k) {
      // Indices may be floats: truncate like a cast, after a range check that
      // keeps the cast defined. Out-of-range indices leave their row all off.
      const double v = indices.GetDouble(k);
      if (!(v > -depth - 1.0 && v < depth)) continue;
      int64_t i = static_cast<int64_t>(v);
      if (!WrapIndex(i, depth)) continue;
      out.data<T>()[(k / inner * depth + i) * inner + k % inner] = on;
    }
    return absl::OkStatus();
  });
}

}  // namespace

void RegisterIndexOps(OpTable& t) {
  t["Gather"] = OpDef{.infer = InferGather, .compute = Gather};
  t["GatherElements"] = OpDef{.infer = InferGatherElements, .compute = GatherElements};
  t["GatherND"] = OpDef{.infer = InferGatherND, .compute = GatherND};
  t["ScatterElements"] = OpDef{.infer = InferScatterElements, .compute = ScatterElements};
  t["Scatter"] = t["ScatterElements"];  // its name in opsets 9 and 10
  t["ScatterND"] = OpDef{.infer = InferScatterND, .compute = ScatterND};
  t["OneHot"] = OpDef{.infer = InferOneHot, .compute = OneHot, .value_inputs = {1}};
}

}  // namespace slimserve::runtime::reference
