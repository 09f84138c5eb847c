#include "runtime/reference/common.h"

namespace slimserve::runtime::reference {

absl::StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank) {
  const int64_t r = rank == 0 ? 1 : rank;
  if (axis < -r || axis >= r) {
    return absl::InvalidArgumentError(
        absl::StrCat("axis ", axis, " is out of range for rank ", rank));
  }
  return axis < 0 ? axis + r : axis;
}

BroadcastIterator::BroadcastIterator(absl::Span<const int64_t> out_shape,
                                     const std::vector<absl::Span<const int64_t>>& in_shapes)
    : out_shape_(out_shape.begin(), out_shape.end()),
      index_(out_shape.size(), 0),
      offsets_(in_shapes.size(), 0) {
  const size_t rank = out_shape.size();
  for (const auto& s : in_shapes) {
    std::vector<int64_t> st(rank, 0);
    int64_t stride = 1;
    for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
      const size_t od = rank - s.size() + d;
      st[od] = s[d] == 1 ? 0 : stride;
      stride *= s[d];
    }
    strides_.push_back(std::move(st));
  }
}

void BroadcastIterator::Next() {
  for (int64_t d = static_cast<int64_t>(out_shape_.size()) - 1; d >= 0; --d) {
    if (++index_[d] < out_shape_[d]) {
      for (size_t k = 0; k < offsets_.size(); ++k) offsets_[k] += strides_[k][d];
      return;
    }
    for (size_t k = 0; k < offsets_.size(); ++k) offsets_[k] -= strides_[k][d] * (out_shape_[d] - 1);
    index_[d] = 0;
  }
}

}  // namespace slimserve::runtime::reference
