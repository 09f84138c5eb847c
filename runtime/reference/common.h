// Helpers shared by the reference kernels: type dispatch, axes, broadcasting.
#ifndef SLIMSERVE_RUNTIME_REFERENCE_COMMON_H_
#define SLIMSERVE_RUNTIME_REFERENCE_COMMON_H_

#include <cstdint>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "runtime/dtype.h"
#include "runtime/tensor.h"

namespace slimserve::runtime::reference {

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) for the C++ type of `dtype`. Float variants: float and
// double; numeric: floats and all integers; all: numeric and bool.
template <typename F>
absl::Status VisitFloat(DataType dtype, F&& f) {
  switch (dtype) {
    case DataType::kFloat32: return f(TypeTag<float>{});
    case DataType::kFloat64: return f(TypeTag<double>{});
    default:
      return absl::UnimplementedError(absl::StrCat("type ", DataTypeName(dtype), " not supported"));
  }
}

template <typename F>
absl::Status VisitNumeric(DataType dtype, F&& f) {
  switch (dtype) {
    case DataType::kFloat32: return f(TypeTag<float>{});
    case DataType::kFloat64: return f(TypeTag<double>{});
    case DataType::kInt8: return f(TypeTag<int8_t>{});
    case DataType::kUint8: return f(TypeTag<uint8_t>{});
    case DataType::kInt16: return f(TypeTag<int16_t>{});
    case DataType::kUint16: return f(TypeTag<uint16_t>{});
    case DataType::kInt32: return f(TypeTag<int32_t>{});
    case DataType::kUint32: return f(TypeTag<uint32_t>{});
    case DataType::kInt64: return f(TypeTag<int64_t>{});
    case DataType::kUint64: return f(TypeTag<uint64_t>{});
    default:
      return absl::UnimplementedError(absl::StrCat("type ", DataTypeName(dtype), " not supported"));
  }
}

template <typename F>
absl::Status VisitAll(DataType dtype, F&& f) {
  if (dtype == DataType::kBool) return f(TypeTag<bool>{});
  return VisitNumeric(dtype, std::forward<F>(f));
}

// Maps a possibly negative axis into [0, rank).
absl::StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank);

// Offsets of each output element into inputs broadcast to `out_shape`.
// Iterate with Next(); offset(k) is the element index into input k.
class BroadcastIterator {
 public:
  BroadcastIterator(absl::Span<const int64_t> out_shape,
                    const std::vector<absl::Span<const int64_t>>& in_shapes);
  int64_t offset(size_t k) const { return offsets_[k]; }
  void Next();

 private:
  Shape out_shape_;
  std::vector<int64_t> index_;
  std::vector<std::vector<int64_t>> strides_;  // per input, per output dim (0 if broadcast)
  std::vector<int64_t> offsets_;
};

// Integer sums and products wrap around, as in numpy and ONNX Runtime; they
// are computed unsigned because signed overflow is undefined in C++ (and small
// types promote to int, whose products can overflow too).
template <typename T>
T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<std::common_type_t<T, unsigned>>;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}

template <typename T>
T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<std::common_type_t<T, unsigned>>;
    return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
  } else {
    return a - b;
  }
}

template <typename T>
T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<std::common_type_t<T, unsigned>>;
    return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
  } else {
    return a * b;
  }
}

// Copies the rows of a strided view: used by Transpose, Slice, Concat helpers.
// out[i] = in[sum_d idx_d * in_strides[d] + in_offset] over out_shape.
template <typename T>
void StridedCopy(const T* in, int64_t in_offset, absl::Span<const int64_t> in_strides,
                 absl::Span<const int64_t> out_shape, T* out) {
  const int64_t n = NumElementsUnchecked(out_shape);
  const size_t rank = out_shape.size();
  if (rank == 0) {
    if (n == 1) out[0] = in[in_offset];
    return;
  }
  std::vector<int64_t> idx(rank, 0);
  int64_t off = in_offset;
  const int64_t inner = out_shape[rank - 1];
  const int64_t inner_stride = in_strides[rank - 1];
  for (int64_t i = 0; i < n; i += inner) {
    if (inner == 0) break;
    for (int64_t j = 0; j < inner; ++j) out[i + j] = in[off + j * inner_stride];
    for (int64_t d = static_cast<int64_t>(rank) - 2; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) {
        off += in_strides[d];
        break;
      }
      off -= in_strides[d] * (out_shape[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace slimserve::runtime::reference

#endif  // SLIMSERVE_RUNTIME_REFERENCE_COMMON_H_
