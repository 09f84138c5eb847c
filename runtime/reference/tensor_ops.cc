// Shape and data-movement ONNX operators. Their kernels move elements without
// looking at them (VisitBytes), so they serve every element type; most are one
// strided read of the input (CopyView). The ops that address elements through
// index tensors are in index_ops.cc, Resize and Upsample in resize.cc.
#include "runtime/reference/tensor_ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "runtime/reference/common.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// ---- Helpers ------------------------------------------------------------------

// The bits of a zero element, in every type.
constexpr uint64_t kZeroBits = 0;

// Values of input i that must be sizes or counts (>= 0): Expand's shape,
// ConstantOfShape's shape, Tile's repeats.
absl::StatusOr<std::vector<int64_t>> CountsOf(const InferContext& c, size_t i) {
  ASSIGN_OR_RETURN(const Tensor* t, ValueOf(c, i));
  if (t == nullptr) return c.Error(absl::StrCat("missing input ", i));
  std::vector<int64_t> v = t->ToInt64Vector();
  for (int64_t x : v) {
    if (x < 0) {
      return c.Error(absl::StrCat("input ", i, " has a negative value: ", ShapeToString(v)));
    }
  }
  return v;
}

// out = `in` read as the strided view (view_shape, strides in elements,
// starting at element `offset`); view_shape has out's element count.
absl::Status CopyView(const Tensor& in, int64_t offset, absl::Span<const int64_t> strides,
                      absl::Span<const int64_t> view_shape, Tensor& out) {
  // An empty view may pair a 0 with a huge dim (Tile by 2^63 - 1 of an empty
  // axis) whose product overflows before it reaches the 0.
  if (out.num_elements() == 0) return absl::OkStatus();
  return VisitBytes(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    StridedCopy<T>(in.data<T>(), offset, strides, view_shape, out.data<T>());
    return absl::OkStatus();
  });
}

// out = transpose(reshape(in, as), perm).
absl::Status TransposeAs(const Tensor& in, absl::Span<const int64_t> as,
                         absl::Span<const int64_t> perm, Tensor& out) {
  const std::vector<int64_t> in_strides = Strides(as);
  Shape view;
  std::vector<int64_t> strides;
  for (int64_t p : perm) {
    view.push_back(as[p]);
    strides.push_back(in_strides[p]);
  }
  return CopyView(in, 0, strides, view, out);
}

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
  CopyBytes(c.outputs[0].raw_data(), c.input(0).raw_data(), c.outputs[0].byte_size());
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
    ASSIGN_OR_RETURN(int64_t axis, AxisOf(c, a, s.size()));
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
    ASSIGN_OR_RETURN(int64_t axis, AxisOf(c, a, rank));
    if (inserted[axis]) return c.Error(absl::StrCat("axis ", a, " repeated"));
    inserted[axis] = true;
  }
  Shape out;
  size_t k = 0;
  for (int64_t i = 0; i < rank; ++i) out.push_back(inserted[i] ? 1 : s[k++]);
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

// ---- Concat, Split ------------------------------------------------------------

absl::Status InferConcat(InferContext& c) {
  if (c.num_inputs() == 0) return c.Error("needs at least one input");
  const TensorDesc& first = c.input(0);
  const int64_t rank = static_cast<int64_t>(first.shape.size());
  ASSIGN_OR_RETURN(int64_t axis, AxisOf(c, c.node.GetInt("axis", 0), rank));
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

// Sizes of Split's outputs along an axis of size `dim`: the `split` attribute
// (before opset 13) or input, else equal parts.
template <typename Ctx>
absl::StatusOr<std::vector<int64_t>> SplitSizes(const Ctx& c, int64_t dim) {
  std::vector<int64_t> sizes = c.node.GetInts("split");
  ASSIGN_OR_RETURN(const Tensor* split, ValueOf(c, 1));
  if (split != nullptr) sizes = split->ToInt64Vector();
  const int64_t n = static_cast<int64_t>(c.node.outputs.size());
  if (sizes.empty()) {
    if (n == 0 || dim % n != 0) {
      return c.Error(absl::StrCat("cannot split size ", dim, " into ", n, " equal parts"));
    }
    sizes.assign(n, dim / n);
  }
  bool valid = static_cast<int64_t>(sizes.size()) == n;
  int64_t total = 0;
  for (size_t k = 0; valid && k < sizes.size(); ++k) {
    valid = sizes[k] >= 0 && sizes[k] <= dim - total;  // total stays <= dim: no overflow
    total += valid ? sizes[k] : 0;
  }
  if (!valid || total != dim) {
    return c.Error(absl::StrCat("split ", ShapeToString(sizes), " does not divide size ", dim,
                                " into ", n, " outputs"));
  }
  return sizes;
}

absl::Status InferSplit(InferContext& c) {
  const TensorDesc& in = c.input(0);
  ASSIGN_OR_RETURN(int64_t axis, AxisOf(c, c.node.GetInt("axis", 0), in.shape.size()));
  ASSIGN_OR_RETURN(std::vector<int64_t> sizes, SplitSizes(c, in.shape[axis]));
  for (size_t k = 0; k < sizes.size(); ++k) {
    Shape s = in.shape;
    s[axis] = sizes[k];
    c.SetOutput(k, in.dtype, s);
  }
  return absl::OkStatus();
}

absl::Status Split(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const int64_t axis = NormalizeAxis(c.node.GetInt("axis", 0), in.rank()).value();
  ASSIGN_OR_RETURN(std::vector<int64_t> sizes, SplitSizes(c, in.dim(axis)));
  int64_t outer = 1, inner = DataTypeSize(in.dtype());
  for (int64_t d = 0; d < axis; ++d) outer *= in.dim(d);
  for (int64_t d = axis + 1; d < in.rank(); ++d) inner *= in.dim(d);
  const char* src = static_cast<const char*>(in.raw_data());
  int64_t offset = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    if (c.outputs[k].defined()) {
      char* dst = static_cast<char*>(c.outputs[k].raw_data());
      const int64_t row = sizes[k] * inner;
      for (int64_t o = 0; o < outer; ++o) {
        CopyBytes(dst + o * row, src + (o * in.dim(axis) + offset) * inner, row);
      }
    }
    offset += sizes[k];
  }
  return absl::OkStatus();
}

// ---- Slice --------------------------------------------------------------------

// A Slice as a strided view: per axis the first element and the step, and the
// output shape.
struct SliceSpec {
  Shape out;
  std::vector<int64_t> start, step;
};

template <typename Ctx>
absl::StatusOr<SliceSpec> SliceSpecOf(const Ctx& c, const Shape& shape) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    starts = c.node.GetInts("starts");
    ends = c.node.GetInts("ends");
    axes = c.node.GetInts("axes");
  } else {
    std::vector<int64_t>* targets[] = {&starts, &ends, &axes, &steps};
    for (size_t i = 1; i <= 4; ++i) {
      ASSIGN_OR_RETURN(const Tensor* t, ValueOf(c, i));
      if (t != nullptr) *targets[i - 1] = t->ToInt64Vector();
    }
  }
  const size_t n = starts.size();
  if (axes.empty()) {
    for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(n, 1);
  if (ends.size() != n || axes.size() != n || steps.size() != n) {
    return c.Error("starts, ends, axes and steps differ in length");
  }
  SliceSpec spec{shape, std::vector<int64_t>(rank, 0), std::vector<int64_t>(rank, 1)};
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(const int64_t axis, AxisOf(c, axes[i], rank));
    if (seen[axis]) return c.Error(absl::StrCat("axis ", axes[i], " repeated"));
    seen[axis] = true;
    if (steps[i] == 0) return c.Error("step 0");
    const int64_t dim = shape[axis];
    // A step longer than the axis takes one element at most, as a step of the
    // axis' size does; bounding it keeps step * stride from overflowing.
    const int64_t step =
        std::clamp(steps[i], -std::max<int64_t>(dim, 1), std::max<int64_t>(dim, 1));
    int64_t start = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t end = ends[i] < 0 ? ends[i] + dim : ends[i];
    int64_t count;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      count = start > end ? (start - end - 1) / -step + 1 : 0;
    }
    spec.out[axis] = count;
    spec.start[axis] = count > 0 ? start : 0;
    spec.step[axis] = step;
  }
  return spec;
}

absl::Status InferSlice(InferContext& c) {
  ASSIGN_OR_RETURN(SliceSpec spec, SliceSpecOf(c, c.input(0).shape));
  c.SetOutput(0, c.input(0).dtype, spec.out);
  return absl::OkStatus();
}

absl::Status Slice(ComputeContext& c) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(SliceSpec spec, SliceSpecOf(c, in.shape()));
  const std::vector<int64_t> in_strides = Strides(in.shape());
  int64_t offset = 0;
  std::vector<int64_t> strides;
  for (int64_t d = 0; d < in.rank(); ++d) {
    offset += spec.start[d] * in_strides[d];
    strides.push_back(spec.step[d] * in_strides[d]);
  }
  return CopyView(in, offset, strides, spec.out, c.outputs[0]);
}

// ---- Transpose, DepthToSpace, SpaceToDepth -------------------------------------

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
  return TransposeAs(in, in.shape(), PermOf(c.node, in.rank()), c.outputs[0]);
}

// DepthToSpace and SpaceToDepth move blocksize x blocksize blocks of NCHW
// pixels between the channel and the spatial dims.
absl::StatusOr<int64_t> CheckBlocks(InferContext& c, bool to_space) {
  const Shape& s = c.input(0).shape;
  const int64_t b = c.node.GetInt("blocksize", 0);
  if (s.size() != 4 || b <= 0 || b > (int64_t{1} << 20)) {
    return c.Error("needs an NCHW input and a blocksize from 1 to 2^20");
  }
  const bool fits = to_space ? s[1] % (b * b) == 0 : s[2] % b == 0 && s[3] % b == 0;
  if (!fits) return c.Error(absl::StrCat("blocksize ", b, " does not divide ", ShapeToString(s)));
  return b;
}

absl::Status InferDepthToSpace(InferContext& c) {
  ASSIGN_OR_RETURN(const int64_t b, CheckBlocks(c, true));
  const std::string mode = c.node.GetString("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return c.Error(absl::StrCat("unknown mode '", mode, "'"));
  const Shape& s = c.input(0).shape;
  Shape out = {s[0], s[1] / (b * b), 0, 0};
  if (__builtin_mul_overflow(s[2], b, &out[2]) || __builtin_mul_overflow(s[3], b, &out[3])) {
    return c.Error("output too large");
  }
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

absl::Status DepthToSpace(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const int64_t b = c.node.GetInt("blocksize", 0);
  const int64_t n = in.dim(0), ch = in.dim(1) / (b * b), h = in.dim(2), w = in.dim(3);
  // DCR: depth is (block row, block column, channel); CRD: (channel, row, column).
  if (c.node.GetString("mode", "DCR") == "DCR") {
    return TransposeAs(in, {n, b, b, ch, h, w}, {0, 3, 4, 1, 5, 2}, c.outputs[0]);
  }
  return TransposeAs(in, {n, ch, b, b, h, w}, {0, 1, 4, 2, 5, 3}, c.outputs[0]);
}

absl::Status InferSpaceToDepth(InferContext& c) {
  ASSIGN_OR_RETURN(const int64_t b, CheckBlocks(c, false));
  const Shape& s = c.input(0).shape;
  int64_t ch;
  if (__builtin_mul_overflow(s[1], b * b, &ch)) return c.Error("output too large");
  c.SetOutput(0, c.input(0).dtype, {s[0], ch, s[2] / b, s[3] / b});
  return absl::OkStatus();
}

absl::Status SpaceToDepth(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const int64_t b = c.node.GetInt("blocksize", 0);
  const int64_t n = in.dim(0), ch = in.dim(1), h = in.dim(2) / b, w = in.dim(3) / b;
  return TransposeAs(in, {n, ch, h, b, w, b}, {0, 3, 5, 1, 2, 4}, c.outputs[0]);
}

// ---- Expand, Tile ---------------------------------------------------------------

absl::Status InferExpand(InferContext& c) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> shape, CountsOf(c, 1));
  absl::StatusOr<Shape> out = BroadcastShapes(c.input(0).shape, shape);
  if (!out.ok()) return c.Error(out.status().message());
  c.SetOutput(0, c.input(0).dtype, *out);
  return absl::OkStatus();
}

// Broadcast dims are read with stride 0.
absl::Status Expand(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.outputs[0];
  const std::vector<int64_t> in_strides = Strides(in.shape());
  const int64_t lead = out.rank() - in.rank();
  std::vector<int64_t> strides(out.rank(), 0);
  for (int64_t d = 0; d < in.rank(); ++d) strides[lead + d] = in.dim(d) == 1 ? 0 : in_strides[d];
  return CopyView(in, 0, strides, out.shape(), out);
}

absl::Status InferTile(InferContext& c) {
  const Shape& s = c.input(0).shape;
  ASSIGN_OR_RETURN(const std::vector<int64_t> repeats, CountsOf(c, 1));
  if (repeats.size() != s.size()) return c.Error("repeats must have one entry per input dim");
  Shape out(s.size());
  for (size_t d = 0; d < s.size(); ++d) {
    if (__builtin_mul_overflow(s[d], repeats[d], &out[d])) return c.Error("output too large");
  }
  c.SetOutput(0, c.input(0).dtype, out);
  return absl::OkStatus();
}

// The output, viewed as [r0, d0, r1, d1, ...], reads the input with stride 0
// along each repeat.
absl::Status Tile(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const std::vector<int64_t> repeats = c.input(1).ToInt64Vector();
  const std::vector<int64_t> in_strides = Strides(in.shape());
  Shape view;
  std::vector<int64_t> strides;
  for (int64_t d = 0; d < in.rank(); ++d) {
    view.insert(view.end(), {repeats[d], in.dim(d)});
    strides.insert(strides.end(), {0, in_strides[d]});
  }
  return CopyView(in, 0, strides, view, c.outputs[0]);
}

// ---- Pad --------------------------------------------------------------------------

enum class PadMode { kConstant, kReflect, kEdge };

template <typename Ctx>
absl::StatusOr<PadMode> PadModeOf(const Ctx& c) {
  const std::string mode = c.node.GetString("mode", "constant");
  if (mode == "constant") return PadMode::kConstant;
  if (mode == "reflect") return PadMode::kReflect;
  if (mode == "edge") return PadMode::kEdge;
  return c.Error(absl::StrCat("unsupported mode '", mode, "'"));
}

// [begin_0, ..., begin_r-1, end_0, ..., end_r-1]; negative pads crop.
template <typename Ctx>
absl::StatusOr<std::vector<int64_t>> PadsOf(const Ctx& c, size_t rank) {
  std::vector<int64_t> pads = c.node.GetInts(c.opset < 2 ? "paddings" : "pads");
  if (c.opset >= 11) {
    ASSIGN_OR_RETURN(const Tensor* t, ValueOf(c, 1));
    if (t == nullptr) return c.Error("missing pads");
    pads = t->ToInt64Vector();
  }
  if (pads.size() != 2 * rank) return c.Error("pads must have two entries per input dim");
  return pads;
}

absl::Status InferPad(InferContext& c) {
  const TensorDesc& in = c.input(0);
  const size_t rank = in.shape.size();
  ASSIGN_OR_RETURN(const std::vector<int64_t> pads, PadsOf(c, rank));
  ASSIGN_OR_RETURN(const PadMode mode, PadModeOf(c));
  if (c.opset >= 11 && c.input(2).defined() && c.input(2).dtype != in.dtype) {
    return c.Error("constant_value must have the type of data");
  }
  constexpr int64_t kMaxPad = int64_t{1} << 62;  // keeps index arithmetic in range
  Shape out(rank);
  for (size_t d = 0; d < rank; ++d) {
    const int64_t begin = pads[d], end = pads[d + rank];
    const bool bounded = begin >= -kMaxPad && begin <= kMaxPad && end >= -kMaxPad && end <= kMaxPad;
    out[d] = bounded ? in.shape[d] + begin + end : -1;
    if (out[d] < 0) {
      return c.Error(absl::StrCat("invalid pads ", ShapeToString(pads), " for shape ",
                                  ShapeToString(in.shape)));
    }
    if (mode != PadMode::kConstant && in.shape[d] == 0 && out[d] > 0) {
      return c.Error("edge and reflect padding need a non-empty axis");
    }
  }
  c.SetOutput(0, in.dtype, out);
  return absl::OkStatus();
}

// Reflects an out-of-range index i about the ends of [0, n), as often as it
// takes (numpy's 'reflect').
int64_t Reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i = std::abs(i) % period;
  return i < n ? i : period - i;
}

// The pad constant as the bits of one element.
absl::StatusOr<std::array<char, 8>> PadValue(const ComputeContext& c) {
  std::array<char, 8> value{};
  const DataType dtype = c.input(0).dtype();
  if (c.opset >= 11) {
    if (c.has_input(2) && c.input(2).num_elements() > 0) {
      std::memcpy(value.data(), c.input(2).raw_data(), DataTypeSize(dtype));
    }
    return value;
  }
  const float v = c.node.GetFloat("value", 0.0f);
  if (v == 0) return value;
  RETURN_IF_ERROR(VisitFloat(dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T t = static_cast<T>(v);
    std::memcpy(value.data(), &t, sizeof(T));
    return absl::OkStatus();
  }));
  return value;
}

absl::Status Pad(ComputeContext& c) {
  const Tensor& in = c.input(0);
  Tensor& out = c.outputs[0];
  ASSIGN_OR_RETURN(const std::vector<int64_t> pads, PadsOf(c, in.rank()));
  ASSIGN_OR_RETURN(const PadMode mode, PadModeOf(c));
  ASSIGN_OR_RETURN(const auto value, PadValue(c));
  std::vector<std::vector<int64_t>> maps(in.rank());
  for (int64_t d = 0; d < in.rank(); ++d) {
    const int64_t n = in.dim(d);
    for (int64_t o = 0; o < out.dim(d); ++o) {
      int64_t i = o - pads[d];
      if (i < 0 || i >= n) {
        i = mode == PadMode::kConstant ? -1
            : mode == PadMode::kEdge   ? std::clamp<int64_t>(i, 0, n - 1)
                                       : Reflect(i, n);
      }
      maps[d].push_back(i);
    }
  }
  return GatherByAxisMaps(in, maps, value.data(), out);
}

// ---- ConstantOfShape, Range, EyeLike ---------------------------------------------

absl::Status InferConstantOfShape(InferContext& c) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> shape, CountsOf(c, 0));
  const Tensor* value = c.node.GetTensor("value");
  if (value != nullptr && (!value->defined() || value->num_elements() != 1)) {
    return c.Error("value must be a tensor of one element");
  }
  c.SetOutput(0, value != nullptr ? value->dtype() : DataType::kFloat32, shape);
  return absl::OkStatus();
}

absl::Status ConstantOfShape(ComputeContext& c) {
  const Tensor* value = c.node.GetTensor("value");
  return Fill(c.outputs[0], value != nullptr ? value->raw_data() : &kZeroBits);
}

absl::Status InferRange(InferContext& c) {
  double v[3];
  for (size_t i = 0; i < 3; ++i) {
    ASSIGN_OR_RETURN(const Tensor* t, ValueOf(c, i));
    if (t == nullptr || t->num_elements() != 1 || t->dtype() != c.input(0).dtype) {
      return c.Error("start, limit and delta must be scalars of one type");
    }
    v[i] = t->GetDouble();
  }
  const DataType dtype = c.input(0).dtype;
  if (dtype != DataType::kFloat32 && dtype != DataType::kFloat64 && dtype != DataType::kInt16 &&
      dtype != DataType::kInt32 && dtype != DataType::kInt64) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": Range of ", DataTypeName(dtype), " is not supported"));
  }
  if (v[2] == 0) return c.Error("delta must not be 0");
  const double n = std::max(0.0, std::ceil((v[1] - v[0]) / v[2]));
  if (!(n < 9e15)) return c.Error("the range must be finite");
  c.SetOutput(0, dtype, {static_cast<int64_t>(n)});
  return absl::OkStatus();
}

absl::Status Range(ComputeContext& c) {
  return VisitNumeric(c.outputs[0].dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    // start + i * delta lies between start and limit, but for integers i and
    // i * delta may not fit T: compute modulo 2^64, which is exact for the sum.
    using Wide = std::conditional_t<std::is_integral_v<T>, int64_t, T>;
    const Wide start = c.input(0).data<T>()[0], delta = c.input(2).data<T>()[0];
    T* y = c.outputs[0].data<T>();
    for (int64_t i = 0; i < c.outputs[0].num_elements(); ++i) {
      y[i] = static_cast<T>(WrapAdd(start, WrapMul(static_cast<Wide>(i), delta)));
    }
    return absl::OkStatus();
  });
}

absl::Status InferEyeLike(InferContext& c) {
  const TensorDesc& in = c.input(0);
  if (in.shape.size() != 2) return c.Error("needs a 2-D input");
  const DataType dtype =
      c.node.Has("dtype") ? static_cast<DataType>(c.node.GetInt("dtype", 0)) : in.dtype;
  if (!IsSupportedDataType(dtype)) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": type ", DataTypeName(dtype), " is not supported"));
  }
  c.SetOutput(0, dtype, in.shape);
  return absl::OkStatus();
}

absl::Status EyeLike(ComputeContext& c) {
  Tensor& out = c.outputs[0];
  const int64_t rows = out.dim(0), cols = out.dim(1);
  // Diagonals beyond the matrix are empty; bounding k keeps i + k in range.
  const int64_t k = std::clamp<int64_t>(c.node.GetInt("k", 0), -rows, cols);
  return VisitAll(out.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* y = out.data<T>();
    std::fill_n(y, rows * cols, T(0));
    for (int64_t i = std::max<int64_t>(0, -k); i < rows && i + k < cols; ++i)
      y[i * cols + i + k] = T(1);
    return absl::OkStatus();
  });
}

// ---- Trilu, CumSum ------------------------------------------------------------------

absl::Status InferTrilu(InferContext& c) {
  if (c.input(0).shape.size() < 2) return c.Error("needs an input of rank 2 or more");
  if (c.input(1).defined() && NumElementsUnchecked(c.input(1).shape) != 1) {
    return c.Error("k must have one element");
  }
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

// Keeps the elements on and above (upper) or below the k-th diagonal of each
// matrix in the last two dims; zeroes the rest.
absl::Status Trilu(ComputeContext& c) {
  const Tensor& in = c.input(0);
  const int64_t k = c.has_input(1) ? c.input(1).GetInt() : 0;
  const bool upper = c.node.GetInt("upper", 1) != 0;
  const int64_t rows = in.dim(in.rank() - 2), cols = in.dim(in.rank() - 1);
  if (rows * cols == 0) return absl::OkStatus();
  return VisitBytes(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    for (int64_t m = 0; m < in.num_elements(); m += rows * cols) {
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t p = m + i * cols + j;
          y[p] = (upper ? j - i >= k : j - i <= k) ? x[p] : T(0);
        }
      }
    }
    return absl::OkStatus();
  });
}

absl::Status InferCumSum(InferContext& c) {
  const TensorDesc& axis = c.input(1);
  if (!IsIndexType(axis.dtype) || NumElementsUnchecked(axis.shape) != 1) {
    return c.Error("axis must be one int32 or int64");
  }
  if (axis.constant != nullptr) {
    RETURN_IF_ERROR(AxisOf(c, axis.constant->GetInt(), c.input(0).shape.size()).status());
  }
  c.SetOutput(0, c.input(0).dtype, c.input(0).shape);
  return absl::OkStatus();
}

absl::Status CumSum(ComputeContext& c) {
  const Tensor& in = c.input(0);
  ASSIGN_OR_RETURN(const int64_t axis, AxisOf(c, c.input(1).GetInt(), in.rank()));
  const bool exclusive = c.node.GetInt("exclusive", 0) != 0;
  const bool reverse = c.node.GetInt("reverse", 0) != 0;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= in.dim(d);
  for (int64_t d = axis + 1; d < in.rank(); ++d) inner *= in.dim(d);
  const int64_t n = in.dim(axis);
  return VisitNumeric(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = c.outputs[0].data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        T sum = T(0);
        for (int64_t s = 0; s < n; ++s) {
          const int64_t p = (o * n + (reverse ? n - 1 - s : s)) * inner + i;
          const T v = x[p];
          if (!exclusive) sum = WrapAdd(sum, v);
          y[p] = sum;
          if (exclusive) sum = WrapAdd(sum, v);
        }
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace

absl::StatusOr<const Tensor*> ValueOf(const InferContext& c, size_t i) {
  const TensorDesc& d = c.input(i);
  if (!d.defined()) return static_cast<const Tensor*>(nullptr);
  if (d.constant == nullptr) {
    return c.Error(
        absl::StrCat("input ", i, " decides the output shape and must be known at load time"));
  }
  return d.constant;
}

absl::StatusOr<const Tensor*> ValueOf(const ComputeContext& c, size_t i) {
  return c.has_input(i) ? &c.input(i) : nullptr;
}

absl::Status Fill(Tensor& out, const void* value) {
  return VisitBytes(out.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T v;
    std::memcpy(&v, value, sizeof(T));
    std::fill_n(out.data<T>(), out.num_elements(), v);
    return absl::OkStatus();
  });
}

absl::Status GatherByAxisMaps(const Tensor& in, const std::vector<std::vector<int64_t>>& maps,
                              const void* fill, Tensor& out) {
  return VisitBytes(in.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* y = out.data<T>();
    T fill_value;
    std::memcpy(&fill_value, fill, sizeof(T));
    const int64_t rank = out.rank(), n = out.num_elements();
    if (rank == 0) {
      y[0] = x[0];
      return absl::OkStatus();
    }
    // Row by row over the last axis: the outer axes fix the row's base offset.
    const std::vector<int64_t> strides = Strides(in.shape());
    const std::vector<int64_t>& last = maps[rank - 1];
    const int64_t inner = out.dim(rank - 1);
    std::vector<int64_t> coord(rank - 1, 0);
    for (int64_t row = 0; row < n; row += inner) {
      int64_t base = 0;  // -1 when an outer axis maps outside
      for (int64_t d = 0; d + 1 < rank && base >= 0; ++d) {
        const int64_t i = maps[d][coord[d]];
        base = i < 0 ? -1 : base + i * strides[d];
      }
      for (int64_t j = 0; j < inner; ++j) {
        y[row + j] = base < 0 || last[j] < 0 ? fill_value : x[base + last[j]];
      }
      for (int64_t d = rank - 2; d >= 0; --d) {
        if (++coord[d] < out.dim(d)) break;
        coord[d] = 0;
      }
    }
    return absl::OkStatus();
  });
}

void RegisterTensorOps(OpTable& t) {
  t["Shape"] = OpDef{.infer = InferShape, .compute = ShapeOp, .shape_only = true};
  t["Size"] = OpDef{.infer = InferSize, .compute = SizeOp, .shape_only = true};
  t["Reshape"] = OpDef{.infer = InferReshape, .compute = Copy, .value_inputs = {1}};
  t["Flatten"] = OpDef{.infer = InferFlatten, .compute = Copy};
  t["Squeeze"] = OpDef{.infer = InferSqueeze, .compute = Copy, .value_inputs = {1}};
  t["Unsqueeze"] = OpDef{.infer = InferUnsqueeze, .compute = Copy, .value_inputs = {1}};
  t["Concat"] = OpDef{.infer = InferConcat, .compute = Concat};
  t["Split"] = OpDef{.infer = InferSplit, .compute = Split, .value_inputs = {1}};
  t["Slice"] = OpDef{.infer = InferSlice, .compute = Slice, .value_inputs = {1, 2, 3, 4}};
  t["Transpose"] = OpDef{.infer = InferTranspose, .compute = Transpose};
  t["DepthToSpace"] = OpDef{.infer = InferDepthToSpace, .compute = DepthToSpace};
  t["SpaceToDepth"] = OpDef{.infer = InferSpaceToDepth, .compute = SpaceToDepth};
  t["Expand"] = OpDef{.infer = InferExpand, .compute = Expand, .value_inputs = {1}};
  t["Tile"] = OpDef{.infer = InferTile, .compute = Tile, .value_inputs = {1}};
  // Only `pads` decides the shape; constant_value is read when the node runs.
  t["Pad"] = OpDef{.infer = InferPad, .compute = Pad, .value_inputs = {1}};
  t["ConstantOfShape"] =
      OpDef{.infer = InferConstantOfShape, .compute = ConstantOfShape, .value_inputs = {0}};
  t["Range"] = OpDef{.infer = InferRange, .compute = Range, .value_inputs = {0, 1, 2}};
  t["EyeLike"] = OpDef{.infer = InferEyeLike, .compute = EyeLike};
  // Trilu's k and CumSum's axis do not change shapes: no need to know them at load.
  t["Trilu"] = OpDef{.infer = InferTrilu, .compute = Trilu};
  t["CumSum"] = OpDef{.infer = InferCumSum, .compute = CumSum};
  RegisterIndexOps(t);
  RegisterResizeOps(t);
}

}  // namespace slimserve::runtime::reference
