#include "runtime/reference/window.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime::reference {
namespace {

// Bounds every attribute and spatial size, so that the few products and sums
// of them in window arithmetic stay far from int64 overflow.
constexpr int64_t kMaxWindowValue = int64_t{1} << 30;

absl::Status Invalid(const Node& node, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", message));
}

// Reads an ints attribute of `size` values in [min, kMaxWindowValue] into
// the last `size` entries of `dims`, or leaves its defaults when the
// attribute is absent or empty (as some exporters write it).
absl::Status ReadDims(const Node& node, const std::string& name, size_t size, int64_t min,
                      absl::Span<int64_t> dims) {
  const std::vector<int64_t> values = node.GetInts(name);
  if (values.empty()) return absl::OkStatus();
  if (values.size() != size) {
    return Invalid(node, absl::StrCat(name, " has ", values.size(), " values, expected ", size));
  }
  for (size_t i = 0; i < size; ++i) {
    if (values[i] < min || values[i] > kMaxWindowValue) {
      return Invalid(
          node, absl::StrCat(name, " [", absl::StrJoin(values, ","), "] has a value out of range"));
    }
    dims[dims.size() - size + i] = values[i];
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Window> ParseWindow(const Node& node, absl::Span<const int64_t> in,
                                   absl::Span<const int64_t> kernel) {
  Window w;
  w.rank = static_cast<int>(in.size());
  if (w.rank < 1 || w.rank > kWindowDims) {
    return absl::UnimplementedError(
        absl::StrCat(node.Describe(), ": ", in.size(), " spatial dims are not supported"));
  }
  if (kernel.size() != in.size()) {
    return Invalid(
        node, absl::StrCat("kernel has ", kernel.size(), " spatial dims, the input ", in.size()));
  }
  const int offset = kWindowDims - w.rank;
  for (int i = 0; i < w.rank; ++i) {
    if (in[i] > kMaxWindowValue) {
      return Invalid(node, absl::StrCat("spatial size ", in[i], " is too large"));
    }
    if (kernel[i] < 1 || kernel[i] > kMaxWindowValue) {
      return Invalid(node, absl::StrCat("invalid kernel shape ", ShapeToString(kernel)));
    }
    w.in[offset + i] = in[i];
    w.kernel[offset + i] = kernel[i];
  }
  if (node.Has("kernel_shape") &&
      node.GetInts("kernel_shape") != std::vector<int64_t>(kernel.begin(), kernel.end())) {
    return Invalid(node, absl::StrCat("kernel_shape attribute disagrees with the kernel ",
                                      ShapeToString(kernel)));
  }
  RETURN_IF_ERROR(ReadDims(node, "strides", w.rank, 1, absl::MakeSpan(w.stride)));
  RETURN_IF_ERROR(ReadDims(node, "dilations", w.rank, 1, absl::MakeSpan(w.dilation)));
  std::array<int64_t, 2 * kWindowDims> pads{};
  RETURN_IF_ERROR(ReadDims(node, "pads", 2 * w.rank, 0, absl::MakeSpan(pads)));
  for (int i = 0; i < w.rank; ++i) {
    w.pad_begin[offset + i] = pads[2 * offset + i];
    w.pad_end[offset + i] = pads[2 * offset + w.rank + i];
  }
  w.auto_pad = node.GetString("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "VALID" && w.auto_pad != "SAME_UPPER" &&
      w.auto_pad != "SAME_LOWER") {
    return Invalid(node, absl::StrCat("invalid auto_pad '", w.auto_pad, "'"));
  }
  if (w.auto_pad != "NOTSET") w.pad_begin = w.pad_end = {0, 0, 0};
  return w;
}

std::pair<int64_t, int64_t> SplitPadding(int64_t total, bool upper) {
  return upper ? std::pair{total / 2, total - total / 2} : std::pair{total - total / 2, total / 2};
}

absl::Status SetForwardOutput(const Node& node, bool ceil_mode, Window& w) {
  const bool same = w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER";
  for (int d = 0; d < kWindowDims; ++d) {
    const int64_t extent = (w.kernel[d] - 1) * w.dilation[d] + 1;
    if (same) {
      w.out[d] = (w.in[d] + w.stride[d] - 1) / w.stride[d];
      const int64_t total = std::max<int64_t>(0, (w.out[d] - 1) * w.stride[d] + extent - w.in[d]);
      std::tie(w.pad_begin[d], w.pad_end[d]) = SplitPadding(total, w.auto_pad == "SAME_UPPER");
      continue;
    }
    const int64_t span = w.in[d] + w.pad_begin[d] + w.pad_end[d] - extent;
    if (span < 0) {
      return Invalid(
          node, absl::StrCat("window of extent ", extent, " does not fit the padded input of size ",
                             w.in[d] + w.pad_begin[d] + w.pad_end[d]));
    }
    w.out[d] = (ceil_mode ? (span + w.stride[d] - 1) / w.stride[d] : span / w.stride[d]) + 1;
    if (ceil_mode && (w.out[d] - 1) * w.stride[d] >= w.in[d] + w.pad_begin[d]) --w.out[d];
  }
  return absl::OkStatus();
}

absl::Status SetTransposedOutput(const Node& node, Window& w) {
  Window::Dims output_padding{0, 0, 0};
  RETURN_IF_ERROR(ReadDims(node, "output_padding", w.rank, 0, absl::MakeSpan(output_padding)));
  std::vector<int64_t> output_shape = node.GetInts("output_shape");
  if (!output_shape.empty()) {
    // Some exporters write the full shape, batch and channels included.
    if (output_shape.size() == static_cast<size_t>(w.rank) + 2) {
      output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
    }
    if (output_shape.size() != static_cast<size_t>(w.rank)) {
      return Invalid(node, absl::StrCat("output_shape has ", output_shape.size(), " values for ",
                                        w.rank, " spatial dims"));
    }
    for (int64_t v : output_shape) {
      if (v < 0 || v > kMaxWindowValue) return Invalid(node, "output_shape value out of range");
    }
  }
  const bool same = w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER";
  const int offset = kWindowDims - w.rank;
  for (int d = 0; d < kWindowDims; ++d) {
    const int64_t full =
        w.stride[d] * (w.in[d] - 1) + output_padding[d] + (w.kernel[d] - 1) * w.dilation[d] + 1;
    if (same || (!output_shape.empty() && d >= offset)) {
      w.out[d] =
          output_shape.empty() || d < offset ? w.in[d] * w.stride[d] : output_shape[d - offset];
      // An output larger than the full one is not negative padding (a shift)
      // but trailing positions that only get the bias, as in ONNX Runtime.
      std::tie(w.pad_begin[d], w.pad_end[d]) =
          SplitPadding(std::max<int64_t>(0, full - w.out[d]), w.auto_pad == "SAME_UPPER");
    } else {
      w.out[d] = full - w.pad_begin[d] - w.pad_end[d];
    }
    if (w.out[d] < 0) {
      return Invalid(
          node, absl::StrCat("negative output size ", w.out[d], " in spatial dim ", d - offset));
    }
  }
  return absl::OkStatus();
}

}  // namespace slimserve::runtime::reference
