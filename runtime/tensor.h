// Tensor: a dense, row-major, typed n-dimensional array.
//
// A Tensor is a cheap handle: copies share the same storage. It either owns its
// storage (Allocate, FromVector) or borrows memory whose lifetime the caller
// guarantees (View). Not thread-safe for concurrent writes to the same data;
// concurrent reads are fine.
//
//   ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DataType::kFloat32, {1, 3}));
//   t.data<float>()[0] = 1.0f;
#ifndef SLIMSERVE_RUNTIME_TENSOR_H_
#define SLIMSERVE_RUNTIME_TENSOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/dtype.h"

namespace slimserve::runtime {

using Shape = std::vector<int64_t>;

// Product of dims. Fails on a negative dim or when the product overflows int64.
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape);
// Product of dims for a shape already known to be valid.
int64_t NumElementsUnchecked(absl::Span<const int64_t> shape);
// "[1,3,224,224]"
std::string ShapeToString(absl::Span<const int64_t> shape);
// Numpy-style broadcast of two shapes.
absl::StatusOr<Shape> BroadcastShapes(absl::Span<const int64_t> a, absl::Span<const int64_t> b);
// Row-major strides in elements.
std::vector<int64_t> Strides(absl::Span<const int64_t> shape);

class Tensor {
 public:
  // Alignment of owned storage, in bytes (one AVX-512 register).
  static constexpr size_t kAlignment = 64;

  Tensor() = default;

  // Owned, zero-filled storage. Fails on invalid shapes, unsupported types and
  // sizes over `max_bytes`.
  static absl::StatusOr<Tensor> Allocate(DataType dtype, Shape shape,
                                         int64_t max_bytes = int64_t{1} << 36);
  // Borrowed storage; `data` must outlive every copy of the returned tensor.
  static Tensor View(DataType dtype, Shape shape, void* data);
  // Owned copy of `values` with the given shape (sizes must match).
  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& values);

  bool defined() const { return dtype_ != DataType::kUndefined; }
  DataType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[i]; }
  int64_t num_elements() const { return NumElementsUnchecked(shape_); }
  size_t byte_size() const { return static_cast<size_t>(num_elements()) * DataTypeSize(dtype_); }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }

  // Points a view at other memory of the same size (views only: owned
  // storage is never replaced).
  void Rebind(void* data) {
    if (storage_ == nullptr) data_ = data;
  }
  // Same storage, other shape with the same element count.
  Tensor Reshaped(Shape shape) const;
  // Deep copy into owned storage.
  Tensor Clone() const;
  // Scalar or element i converted to int64 / double (integer, bool and float types).
  int64_t GetInt(int64_t i = 0) const;
  double GetDouble(int64_t i = 0) const;
  // All elements as int64 (for shape-like inputs).
  std::vector<int64_t> ToInt64Vector() const;

 private:
  DataType dtype_ = DataType::kUndefined;
  Shape shape_;
  std::shared_ptr<void> storage_;  // null for views
  void* data_ = nullptr;
};

template <typename T>
Tensor Tensor::FromVector(Shape shape, const std::vector<T>& values) {
  Tensor t = Allocate(DataTypeOf<T>::value, std::move(shape)).value();
  for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.num_elements()); ++i) {
    t.data<T>()[i] = values[i];
  }
  return t;
}

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_TENSOR_H_
