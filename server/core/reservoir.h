// A bounded uniform sample of a model's recent request inputs (reservoir
// sampling, one row per entry), for calibrating and evaluating compressed
// variants without a data set. Rows are kept under a byte budget; a request
// is copied only when one of its rows is kept. Thread-safe.
//
//   Reservoir r(32 << 20);
//   r.Offer(request.inputs, /*batched=*/true);   // on the request path
//   std::vector<std::vector<Tensor>> rows = r.Rows();  // each row: one tensor per input, first dim 1
#ifndef SLIMSERVE_SERVER_CORE_RESERVOIR_H_
#define SLIMSERVE_SERVER_CORE_RESERVOIR_H_

#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "runtime/tensor.h"

namespace slimserve::server {

class Reservoir {
 public:
  // `max_bytes` 0: keeps nothing.
  explicit Reservoir(int64_t max_bytes, uint32_t seed = 1) : max_bytes_(max_bytes), rng_(seed) {}

  // `inputs` of one request; with `batched`, their first dimension is rows,
  // else the request is one row (and gets a leading dimension of 1).
  void Offer(const std::vector<runtime::Tensor>& inputs, bool batched);
  // The rows kept, in no particular order.
  std::vector<std::vector<runtime::Tensor>> Rows() const;
  int64_t seen() const;

 private:
  const int64_t max_bytes_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  int64_t seen_ ABSL_GUARDED_BY(mu_) = 0;   // rows offered
  int64_t capacity_ ABSL_GUARDED_BY(mu_) = -1;  // rows; set by the first row's size
  std::vector<std::vector<runtime::Tensor>> rows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_RESERVOIR_H_
