// Shape and data-movement ONNX operators.
#include <cstring>

#include "runtime/reference/common.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// ---- Shape, Size ------------------------------------------------------------

absl::Status InferShape(InferContext& c) {
  const int64_t rank = static_cast<int64_t>(c.input(0).shape.size());
  int64_t start = c.node.GetInt("start", 0);
  int64_t end = c.node.GetInt("end", rank);
  start = std::clamp(start < 0 ? start + rank : start, int64_t{0}, rank);
  end = std::clamp(end < 0 ? end + rank : end, int64_t{0}, rank);
  c.SetOutput(0, DataType::kInt64, {std::max<int64_t>(0, end - start)});
  return absl::OkStatus();
}

absl::Status ShapeOp(ComputeContext& c) {
  const Shape& shape = c.input(0).shape();
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t start = c.node.GetInt("start", 0);
  start = std::clamp(start < 0 ? start + rank : start, int64_t{0}, rank);
  for (int64_t i = 0; i < c.outputs[0].num_elements(); ++i) {
    c.outputs[0].data<int64_t>()[i] = shape[start + i];
  }
  return absl::OkStatus();
}

absl::Status InferSize(InferContext& c) {
  c.SetOutput(0, DataType::kInt64, {});
  return absl::OkStatus();
}

absl::Status SizeOp(ComputeContext& c) {
  c.outputs[0].data<int64_t>()[0] = c.input(0).num_elements();
  return absl::OkStatus();
}

// ---- Views: Reshape, Flatten, Squeeze, Unsqueeze -----------------------------
// The executor runs these without copying when it can; Copy is their kernel.

absl::Status Copy(ComputeContext& c) {
  if (c.outputs[0].byte_size() > 0) {
    std::memcpy(c.outputs[0].raw_data(), c.input(0).raw_data(), c.outputs[0].byte_size());
  }
  return absl::OkStatus();
}

absl::Status InferReshape(InferContext& c) {
  const TensorDesc& data = c.input(0);
  std::vector<int64_t> target;
  if (c.opset < 5) {
    target = c.node.GetInts("shape");
  } else {
    if (c.input(1).constant == nullptr) return c.Error("shape input must be known at load time");
    target = c.input(1).constant->ToInt64Vector();
  }
  const bool allowzero = c.node.GetInt("allowzero", 0) != 0;
  const int64_t total = NumElementsUnchecked(data.shape);
  int64_t known = 1;
  int infer_at = -1;
  Shape out(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && !allowzero) {
      if (i >= data.shape.size()) return c.Error("shape has a 0 beyond the input's rank");
      d = data.shape[i];
    }
    if (d == -1) {
      if (infer_at >= 0) return c.Error("shape has more than one -1");
      infer_at = static_cast<int>(i);
      continue;
    }
    if (d < 0) return c.Error(absl::StrCat("shape has invalid dimension ", d));
    out[i] = d;
    known *= d;
  }
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0) {
      return c.Error(absl::StrCat("cannot reshape ", ShapeToString(data.shape), " to ",
                                  ShapeToString(target)));
    }
    out[infer_at] = total / known;
  } else if (known != total) {
    return c.Error(absl::StrCat("cannot reshape ", ShapeToString(data.shape), " (", total,
                                " elements) to ", ShapeToString(out)));
  }
  c.SetOutput(0, data.dtype, out);
  return absl::OkStatus();
}

absl::Status InferFlatten(InferContext& c) {
  const Shape& s = c.input(0).shape;
  const int64_t rank = static_cast<int64_t>(s.size());
  int64_t axis = c.node.GetInt("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) return c.Error(absl::StrCat("axis out of range for rank ", rank));
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  c.SetOutput(0, c.input(0).dtype, {outer, NumElementsUnchecked(s) / std::max<int64_t>(outer, 1)});
  if (outer == 0) c.outputs[0].shape[1] = 0;
  return absl::OkStatus();
}

// Axes from the attribute (older opsets) or input 1 (opset 13+).
absl::StatusOr<std::vector<int64_t>> AxesOf(InferContext& c, int first_opset_with_input) {
  if (c.opset >= first_opset_with_input) {
    if (!c.input(1).defined()) return std::vector<int64_t>{};
    if (c.input(1).constant == nullptr) return c.Error("axes input must be known at load time");
    return c.input(1).constant->ToInt64Vector();
  }
  return c.node.GetInts("axes");
}

absl::Status InferSqueeze(InferContext& c) {
  const Shape& s = c.input(0).shape;
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesOf(c, 13));
  std::vector<bool> drop(s.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
  }
  for (int64_t a : axes) {
    ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(a, static_cast<int64_t>(s.size())));
    if (s[axis] != 1) return c.Error(absl::StrCat("cannot squeeze axis ", a, " of size ", s[axis]));
    drop[axis] = true;
  }
  Shape out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!drop[i]) out.push_back(s[i]);
  }
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status InferUnsqueeze(InferContext& c) {
  const Shape& s = c.input(0).shape;
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesOf(c, 13));
  const int64_t rank = static_cast<int64_t>(s.size() + axes.size());
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(a, rank));
    if (inserted[axis]) return c.Error(absl::StrCat("axis ", a, " repeated"));
    inserted[axis] = true;
  }
  Shape out;
  size_t k = 0;
  for (int64_t i = 0; i < rank; ++i) out.push_back(inserted[i] ? 1 : s[k++]);
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

// ---- Concat -----------------------------------------------------------------

absl::Status InferConcat(InferContext& c) {
  if (c.num_inputs() == 0) return c.Error("needs at least one input");
  const TensorDesc& first = c.input(0);
  const int64_t rank = static_cast<int64_t>(first.shape.size());
  ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(c.node.GetInt("axis", 0), rank));
  Shape out = first.shape;
  out[axis] = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const TensorDesc& in = c.input(i);
    if (in.dtype != first.dtype || static_cast<int64_t>(in.shape.size()) != rank) {
      return c.Error(absl::StrCat("input ", i, " has type ", DataTypeName(in.dtype), " shape ",
                                  ShapeToString(in.shape), ", unlike input 0"));
    }
    for (int64_t d = 0; d < rank; ++d) {
      if (d != axis && in.shape[d] != first.shape[d]) {
        return c.Error(absl::StrCat("input ", i, " shape ", ShapeToString(in.shape),
                                    " does not match ", ShapeToString(first.shape),
                                    " outside axis ", axis));
      }
    }
    out[axis] += in.shape[axis];
  }
  c.SetOutput(0, first.dtype, out);
  return absl::OkStatus();
}

absl::Status Concat(ComputeContext& c) {
  Tensor& out = c.outputs[0];
  const int64_t rank = out.rank();
  const int64_t axis = NormalizeAxis(c.node.GetInt("axis", 0), rank).value();
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= out.dim(d);
  const size_t elem = DataTypeSize(out.dtype());
  const int64_t out_row = out.num_elements() / std::max<int64_t>(outer, 1) * elem;
  char* dst = static_cast<char*>(out.raw_data());
  int64_t offset = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const Tensor& in = c.input(i);
    const int64_t row = in.num_elements() / std::max<int64_t>(outer, 1) * elem;
    const char* src = static_cast<const char*>(in.raw_data());
    for (int64_t o = 0; o < outer && row > 0; ++o) {
      std::memcpy(dst + o * out_row + offset, src + o * row, row);
    }
    offset += row;
  }
  return absl::OkStatus();
}

// ---- Gather -----------------------------------------------------------------

absl::Status InferGather(InferContext& c) {
  const Shape& data = c.input(0).shape;
  const Shape& indices = c.input(1).shape;
  if (c.input(1).dtype != DataType::kInt64 && c.input(1).dtype != DataType::kInt32) {
    return c.Error("indices must be int32 or int64");
  }
  ASSIGN_OR_RETURN(int64_t axis, NormalizeAxis(c.node.GetInt("axis", 0), data.size()));
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
    if (idx < 0) idx += n;
    if (idx < 0 || idx >= n) {
      return c.Error(absl::StrCat("index ", indices.GetInt(k), " out of range [", -n, ", ", n, ")"));
    }
    for (int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + (o * count + k) * bytes, src + (o * n + idx) * bytes, bytes);
    }
  }
  return absl::OkStatus();
}

// ---- Transpose --------------------------------------------------------------

std::vector<int64_t> PermOf(const Node& node, size_t rank) {
  std::vector<int64_t> perm = node.GetInts("perm");
  if (perm.empty()) {
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
  }
  return perm;
}

absl::Status InferTranspose(InferContext& c) {
  const Shape& s = c.input(0).shape;
  const std::vector<int64_t> perm = PermOf(c.node, s.size());
  if (perm.size() != s.size()) return c.Error("perm length differs from the input rank");
  std::vector<bool> seen(s.size(), false);
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(s.size()) || seen[p]) return c.Error("invalid perm");
    seen[p] = true;
    out.push_back(s[p]);
  }
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status Transpose(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const std::vector<int64_t> perm = PermOf(c.node, in.rank());
  const std::vector<int64_t> in_strides = Strides(in.shape());
  std::vector<int64_t> strides;
  for (int64_t p : perm) strides.push_back(in_strides[p]);
  return VisitAll(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    StridedCopy<T>(in.data<T>(), 0, strides, c.outputs[0].shape(), c.outputs[0].data<T>());
    return absl::OkStatus();
  });
}

}  // namespace

void RegisterTensorOps(OpTable& t) {
  t["Shape"] = OpDef{.infer = InferShape, .compute = ShapeOp, .shape_only = true};
  t["Size"] = OpDef{.infer = InferSize, .compute = SizeOp, .shape_only = true};
  t["Reshape"] = OpDef{.infer = InferReshape, .compute = Copy, .value_inputs = {1}};
  t["Flatten"] = OpDef{.infer = InferFlatten, .compute = Copy};
  t["Squeeze"] = OpDef{.infer = InferSqueeze, .compute = Copy, .value_inputs = {1}};
  t["Unsqueeze"] = OpDef{.infer = InferUnsqueeze, .compute = Copy, .value_inputs = {1}};
  t["Concat"] = OpDef{.infer = InferConcat, .compute = Concat};
  t["Gather"] = OpDef{.infer = InferGather, .compute = Gather};
  t["Transpose"] = OpDef{.infer = InferTranspose, .compute = Transpose};
}

}  // namespace slimserve::runtime::reference
