// Groups of a tensor's elements along a set of axes: the elements of one group
// share every coordinate outside the axes. Reductions, ArgMax/ArgMin, softmax
// and the normalizations are all "for each group, combine its elements", and
// share this iteration. Immutable after construction: thread-safe.
//
//   AxisGroups groups(x.shape(), {1});
//   groups.ForEach(threads, [&](int64_t g, int64_t base, auto offset) {
//     for (int64_t r = 0; r < groups.group_size(); ++r) sum[g] += x[base + offset(r)];
//   });
#ifndef SLIMSERVE_RUNTIME_REFERENCE_REDUCTION_H_
#define SLIMSERVE_RUNTIME_REFERENCE_REDUCTION_H_

#include <cstdint>
#include <type_traits>
#include <vector>

#include "absl/types/span.h"
#include "runtime/reference/parallel.h"

namespace slimserve::runtime::reference {

// The accumulator of a sum or product of T. Floating types accumulate in
// double. Integers accumulate in an unsigned type at least as wide as int:
// wrap-around is defined there (signed overflow is not, and narrower types
// would promote to signed int) and converts back to T as two's complement
// arithmetic would.
template <typename T, bool = std::is_floating_point_v<T>>
struct AccumulatorOf {
  using type = double;
};
template <typename T>
struct AccumulatorOf<T, false> {
  using type = std::make_unsigned_t<decltype(T{} + 0)>;
};
template <typename T>
using Acc = typename AccumulatorOf<T>::type;

class AxisGroups {
 public:
  // `axes` must be distinct and in [0, shape.size()).
  AxisGroups(absl::Span<const int64_t> shape, absl::Span<const int64_t> axes);

  int64_t num_groups() const { return num_groups_; }
  int64_t group_size() const { return group_size_; }

  // An element-wise user (softmax, a normalization) should skip the loop when
  // group_size() is 0: the tensor is empty, however many groups it has.
  //
  // Calls f(g, base, offset) for every group g, in row-major order of the
  // kept axes (the order of a reduction's output), where base + offset(r) is
  // the flat index of the group's r-th element, in row-major order of `axes`.
  // Groups run in parallel on up to num_threads threads when there is enough
  // work; f must then only write memory of its own group.
  template <typename F>
  void ForEach(int num_threads, F&& f) const {
    const int64_t n = num_groups_;
    const bool parallel = WorthThreads(num_threads, n, double(n) * group_size_);
    auto base = [this](int64_t g) { return bases_.empty() ? 0 : bases_[g]; };
    // Two instantiations of f: a strided one (contiguous or single-axis
    // groups, which the compiler can vectorize) and a table lookup for the rest.
    if (offsets_.empty()) {
      const Strided offset{stride_};
#pragma omp parallel for num_threads(num_threads) if (parallel) schedule(static)
      for (int64_t g = 0; g < n; ++g) f(g, base(g), offset);
    } else {
      const Table offset{offsets_.data()};
#pragma omp parallel for num_threads(num_threads) if (parallel) schedule(static)
      for (int64_t g = 0; g < n; ++g) f(g, base(g), offset);
    }
  }

  struct Strided {
    int64_t stride;
    int64_t operator()(int64_t r) const { return r * stride; }
  };
  struct Table {
    const int64_t* offsets;
    int64_t operator()(int64_t r) const { return offsets[r]; }
  };

 private:
  int64_t num_groups_ = 0;
  std::vector<int64_t> bases_;    // empty for an empty tensor
  std::vector<int64_t> offsets_;  // empty when element r is at r * stride_
  int64_t stride_ = 1;
  int64_t group_size_ = 1;
};

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_REDUCTION_H_
