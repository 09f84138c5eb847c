#include "runtime/onnx_tensor.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

std::string TensorLabel(const onnx::TensorProto& proto) {
  return proto.name().empty() ? std::string("tensor") : absl::StrCat("tensor '", proto.name(), "'");
}

// Resolves an external-data location inside `base_dir`, refusing anything
// that escapes it (absolute paths, "..", symlinks pointing outside).
absl::StatusOr<std::filesystem::path> ResolveExternal(const std::string& base_dir,
                                                      const std::string& location,
                                                      const std::string& label) {
  namespace fs = std::filesystem;
  if (base_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, " uses external data, which is not allowed for in-memory models"));
  }
  const fs::path rel(location);
  if (location.empty() || rel.is_absolute()) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, " has external data location '", location, "': it must be a relative path"));
  }
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  const fs::path full = fs::weakly_canonical(base / rel, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, " external data '", location, "': ", ec.message()));
  }
  auto [b, f] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b != base.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, " has external data location '", location, "' outside the model's folder"));
  }
  return full;
}

absl::Status ReadExternal(const onnx::TensorProto& proto, const std::string& base_dir,
                          void* dst, size_t expected) {
  const std::string label = TensorLabel(proto);
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  for (const auto& kv : proto.external_data()) {
    char* end = nullptr;
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset") offset = std::strtoll(kv.value().c_str(), &end, 10);
    if (kv.key() == "length") length = std::strtoll(kv.value().c_str(), &end, 10);
  }
  ASSIGN_OR_RETURN(std::filesystem::path path, ResolveExternal(base_dir, location, label));
  if (offset < 0 || (length >= 0 && static_cast<size_t>(length) != expected)) {
    return absl::InvalidArgumentError(absl::StrCat(label, " external data has offset ", offset,
                                                   " and length ", length, " but needs ",
                                                   expected, " bytes"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat(label, " external data file '", location, "' cannot be opened"));
  }
  file.seekg(0, std::ios::end);
  const int64_t file_size = file.tellg();
  if (file_size < 0 || offset > file_size || static_cast<size_t>(file_size - offset) < expected) {
    return absl::InvalidArgumentError(absl::StrCat(label, " external data file '", location,
                                                   "' is too short"));
  }
  file.seekg(offset);
  file.read(static_cast<char*>(dst), static_cast<std::streamsize>(expected));
  if (!file) return absl::DataLossError(absl::StrCat("reading '", location, "' failed"));
  return absl::OkStatus();
}

template <typename Dst, typename Field>
absl::Status CopyField(const Field& field, Tensor& t, const std::string& label) {
  if (static_cast<int64_t>(field.size()) != t.num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat(label, " has ", field.size(),
                                                   " values but its shape ",
                                                   ShapeToString(t.shape()), " needs ",
                                                   t.num_elements()));
  }
  Dst* out = t.data<Dst>();
  for (int i = 0; i < field.size(); ++i) out[i] = static_cast<Dst>(field.Get(i));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir,
                                       int64_t max_tensor_bytes) {
  const std::string label = TensorLabel(proto);
  const auto dtype = static_cast<DataType>(proto.data_type());
  if (!IsSupportedDataType(dtype)) {
    return absl::UnimplementedError(absl::StrCat(label, " has unsupported element type ",
                                                 DataTypeName(dtype)));
  }
  if (proto.has_segment()) {
    return absl::UnimplementedError(absl::StrCat(label, " is segmented; not supported"));
  }
  Shape shape(proto.dims().begin(), proto.dims().end());
  absl::StatusOr<int64_t> count = NumElements(shape);
  if (!count.ok()) return absl::InvalidArgumentError(absl::StrCat(label, ": ", count.status().message()));
  absl::StatusOr<Tensor> allocated = Tensor::Allocate(dtype, shape, max_tensor_bytes);
  if (!allocated.ok()) {
    return absl::Status(allocated.status().code(),
                        absl::StrCat(label, ": ", allocated.status().message()));
  }
  Tensor t = *std::move(allocated);
  const size_t bytes = t.byte_size();

  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    RETURN_IF_ERROR(ReadExternal(proto, base_dir, t.raw_data(), bytes));
    return t;
  }
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != bytes) {
      return absl::InvalidArgumentError(absl::StrCat(label, " has ", proto.raw_data().size(),
                                                     " bytes of raw data but its shape ",
                                                     ShapeToString(shape), " needs ", bytes));
    }
    if (bytes > 0) std::memcpy(t.raw_data(), proto.raw_data().data(), bytes);
    return t;
  }
  switch (dtype) {
    case DataType::kFloat32: RETURN_IF_ERROR(CopyField<float>(proto.float_data(), t, label)); break;
    case DataType::kFloat64: RETURN_IF_ERROR(CopyField<double>(proto.double_data(), t, label)); break;
    case DataType::kInt64: RETURN_IF_ERROR(CopyField<int64_t>(proto.int64_data(), t, label)); break;
    case DataType::kUint32: RETURN_IF_ERROR(CopyField<uint32_t>(proto.uint64_data(), t, label)); break;
    case DataType::kUint64: RETURN_IF_ERROR(CopyField<uint64_t>(proto.uint64_data(), t, label)); break;
    case DataType::kInt32: RETURN_IF_ERROR(CopyField<int32_t>(proto.int32_data(), t, label)); break;
    case DataType::kInt16: RETURN_IF_ERROR(CopyField<int16_t>(proto.int32_data(), t, label)); break;
    case DataType::kInt8: RETURN_IF_ERROR(CopyField<int8_t>(proto.int32_data(), t, label)); break;
    case DataType::kUint16:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      RETURN_IF_ERROR(CopyField<uint16_t>(proto.int32_data(), t, label));
      break;
    case DataType::kUint8: RETURN_IF_ERROR(CopyField<uint8_t>(proto.int32_data(), t, label)); break;
    case DataType::kBool: RETURN_IF_ERROR(CopyField<bool>(proto.int32_data(), t, label)); break;
    default:
      return absl::UnimplementedError(absl::StrCat(label, ": unsupported type"));
  }
  return t;
}

absl::StatusOr<Tensor> DenseFromSparseProto(const onnx::SparseTensorProto& proto, const std::string& base_dir,
                                            int64_t max_tensor_bytes) {
  const std::string label = absl::StrCat("sparse ", TensorLabel(proto.values()));
  ASSIGN_OR_RETURN(const Tensor values, TensorFromProto(proto.values(), base_dir, max_tensor_bytes));
  ASSIGN_OR_RETURN(const Tensor indices, TensorFromProto(proto.indices(), base_dir, max_tensor_bytes));
  const Shape shape(proto.dims().begin(), proto.dims().end());
  const int64_t nnz = values.num_elements();
  const bool coordinates = indices.rank() == 2 && indices.shape()[1] == static_cast<int64_t>(shape.size());
  if (values.rank() != 1 || indices.dtype() != DataType::kInt64 || !(indices.rank() == 1 || coordinates) ||
      indices.shape()[0] != nnz) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": needs 1-D values and int64 indices of shape [",
                                                   nnz, "] or [", nnz, ", ", shape.size(), "]"));
  }
  absl::StatusOr<Tensor> allocated = Tensor::Allocate(values.dtype(), shape, max_tensor_bytes);
  if (!allocated.ok()) return absl::Status(allocated.status().code(), absl::StrCat(label, ": ", allocated.status().message()));
  Tensor dense = *std::move(allocated);
  std::memset(dense.raw_data(), 0, dense.byte_size());
  const size_t element = DataTypeSize(values.dtype());
  const int64_t* index = indices.data<int64_t>();
  for (int64_t i = 0; i < nnz; ++i) {
    int64_t at = index[i];
    if (coordinates) {
      at = 0;
      for (size_t d = 0; d < shape.size(); ++d) {
        const int64_t c = index[i * shape.size() + d];
        if (c < 0 || c >= shape[d]) return absl::InvalidArgumentError(absl::StrCat(label, ": index out of range"));
        at = at * shape[d] + c;
      }
    }
    if (at < 0 || at >= dense.num_elements()) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": index ", at, " out of range"));
    }
    std::memcpy(static_cast<char*>(dense.raw_data()) + at * element,
                static_cast<const char*>(values.raw_data()) + i * element, element);
  }
  return dense;
}

absl::StatusOr<Tensor> ReadTensorProtoFile(const std::string& path, std::string* name) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  onnx::TensorProto proto;
  if (!proto.ParseFromIstream(&file)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a TensorProto"));
  }
  if (name != nullptr) *name = proto.name();
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return TensorFromProto(proto, dir.empty() ? "." : dir, int64_t{1} << 34);
}

}  // namespace slimserve::runtime
