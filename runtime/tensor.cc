#include "runtime/tensor.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace slimserve::runtime {

absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("negative dimension in shape ", ShapeToString(shape)));
    }
    if (d != 0 && n > INT64_MAX / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeToString(shape), " has too many elements"));
    }
    n *= d;
  }
  return n;
}

int64_t NumElementsUnchecked(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<Shape> BroadcastShapes(absl::Span<const int64_t> a, absl::Span<const int64_t> b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return absl::InvalidArgumentError(absl::StrCat("shapes ", ShapeToString(a), " and ",
                                                     ShapeToString(b), " do not broadcast"));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> Strides(absl::Span<const int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * shape[i + 1];
  }
  return strides;
}

absl::StatusOr<Tensor> Tensor::Allocate(DataType dtype, Shape shape, int64_t max_bytes) {
  if (!IsSupportedDataType(dtype)) {
    return absl::UnimplementedError(absl::StrCat("unsupported tensor type ", DataTypeName(dtype)));
  }
  auto n = NumElements(shape);
  if (!n.ok()) return n.status();
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  if (*n > max_bytes / elem) {
    return absl::ResourceExhaustedError(absl::StrCat("tensor of shape ", ShapeToString(shape),
                                                     " needs more than the limit of ", max_bytes,
                                                     " bytes"));
  }
  const size_t bytes = static_cast<size_t>(*n * elem);
  const size_t padded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, padded == 0 ? kAlignment : padded);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " bytes"));
  }
  std::memset(p, 0, padded == 0 ? kAlignment : padded);
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.storage_ = std::shared_ptr<void>(p, std::free);
  t.data_ = p;
  return t;
}

Tensor Tensor::View(DataType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

Tensor Tensor::Reshaped(Shape shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Allocate(dtype_, shape_).value();
  if (byte_size() > 0) std::memcpy(t.data_, data_, byte_size());
  return t;
}

namespace {
template <typename R>
R Get(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DataType::kFloat32: return static_cast<R>(t.data<float>()[i]);
    case DataType::kFloat64: return static_cast<R>(t.data<double>()[i]);
    case DataType::kInt64: return static_cast<R>(t.data<int64_t>()[i]);
    case DataType::kInt32: return static_cast<R>(t.data<int32_t>()[i]);
    case DataType::kInt16: return static_cast<R>(t.data<int16_t>()[i]);
    case DataType::kInt8: return static_cast<R>(t.data<int8_t>()[i]);
    case DataType::kUint8: return static_cast<R>(t.data<uint8_t>()[i]);
    case DataType::kUint16: return static_cast<R>(t.data<uint16_t>()[i]);
    case DataType::kUint32: return static_cast<R>(t.data<uint32_t>()[i]);
    case DataType::kUint64: return static_cast<R>(t.data<uint64_t>()[i]);
    case DataType::kBool: return static_cast<R>(t.data<bool>()[i]);
    case DataType::kFloat16:
    case DataType::kBFloat16: return static_cast<R>(HalfToDouble(t.data<uint16_t>()[i], t.dtype()));
    default: return R{};
  }
}
}  // namespace

int64_t Tensor::GetInt(int64_t i) const { return Get<int64_t>(*this, i); }
double Tensor::GetDouble(int64_t i) const { return Get<double>(*this, i); }

std::vector<int64_t> Tensor::ToInt64Vector() const {
  std::vector<int64_t> v(num_elements());
  for (int64_t i = 0; i < num_elements(); ++i) v[i] = GetInt(i);
  return v;
}

}  // namespace slimserve::runtime
