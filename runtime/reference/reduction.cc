#include "runtime/reference/reduction.h"

#include <algorithm>

#include "runtime/tensor.h"

namespace slimserve::runtime::reference {
namespace {

// Flat offsets of every point of the grid `sizes` (row-major) under `strides`.
std::vector<int64_t> GridOffsets(const std::vector<int64_t>& sizes,
                                 const std::vector<int64_t>& strides) {
  const int64_t n = NumElementsUnchecked(sizes);
  std::vector<int64_t> offsets(n);
  std::vector<int64_t> index(sizes.size(), 0);
  int64_t offset = 0;
  for (int64_t i = 0; i < n; ++i) {
    offsets[i] = offset;
    for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
      offset += strides[d];
      if (++index[d] < sizes[d]) break;
      offset -= strides[d] * sizes[d];
      index[d] = 0;
    }
  }
  return offsets;
}

}  // namespace

AxisGroups::AxisGroups(absl::Span<const int64_t> shape, absl::Span<const int64_t> axes) {
  const std::vector<int64_t> strides = Strides(shape);
  std::vector<int64_t> kept_sizes, kept_strides, sizes, group_strides;
  for (size_t d = 0; d < shape.size(); ++d) {
    const bool reduced = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    (reduced ? sizes : kept_sizes).push_back(shape[d]);
    (reduced ? group_strides : kept_strides).push_back(strides[d]);
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    // No element to visit. A reduction still has a group per output element,
    // and the executor has bounded its output: a group count that overflows
    // belongs to an op without such an output, which has nothing to write.
    group_size_ = 0;
    num_groups_ = NumElements(kept_sizes).value_or(0);
    return;
  }
  bases_ = GridOffsets(kept_sizes, kept_strides);
  offsets_ = GridOffsets(sizes, group_strides);
  num_groups_ = static_cast<int64_t>(bases_.size());
  group_size_ = static_cast<int64_t>(offsets_.size());
  stride_ = group_size_ > 1 ? offsets_[1] : 1;
  bool progression = true;
  for (int64_t r = 0; r < group_size_ && progression; ++r) progression = offsets_[r] == r * stride_;
  if (progression) offsets_.clear();
}

}  // namespace slimserve::runtime::reference
