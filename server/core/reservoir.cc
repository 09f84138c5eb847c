#include "server/core/reservoir.h"

#include <cstring>

namespace slimserve::server {
namespace {

using runtime::Tensor;

// Row `r` of `t` (rows along the first dimension), shaped [1, ...].
Tensor Row(const Tensor& t, int64_t r, bool batched) {
  runtime::Shape shape = t.shape();
  if (!batched) shape.insert(shape.begin(), 1);
  shape[0] = 1;
  Tensor row = *Tensor::Allocate(t.dtype(), shape);
  std::memcpy(row.raw_data(), static_cast<const char*>(t.raw_data()) + r * row.byte_size(), row.byte_size());
  return row;
}

}  // namespace

void Reservoir::Offer(const std::vector<Tensor>& inputs, bool batched) {
  if (max_bytes_ <= 0 || inputs.empty()) return;
  for (const Tensor& t : inputs) {
    if (t.dtype() == runtime::DataType::kString || (batched && t.rank() == 0)) return;
  }
  const int64_t rows = batched ? inputs[0].shape()[0] : 1;
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t r = 0; r < rows; ++r) {
    ++seen_;
    int64_t slot = static_cast<int64_t>(rows_.size());
    if (capacity_ >= 0 && slot >= capacity_) {
      slot = static_cast<int64_t>(rng_() % static_cast<uint64_t>(seen_));
      if (slot >= capacity_) continue;
    }
    std::vector<Tensor> row;
    int64_t bytes = 0;
    for (const Tensor& t : inputs) {
      row.push_back(Row(t, r, batched));
      bytes += static_cast<int64_t>(row.back().byte_size());
    }
    if (capacity_ < 0) capacity_ = max_bytes_ / std::max<int64_t>(bytes, 1);
    if (capacity_ == 0) return;
    if (slot == static_cast<int64_t>(rows_.size())) {
      rows_.push_back(std::move(row));
    } else {
      rows_[slot] = std::move(row);
    }
  }
}

std::vector<std::vector<Tensor>> Reservoir::Rows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_;
}

int64_t Reservoir::seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

}  // namespace slimserve::server
