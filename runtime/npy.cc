#include "runtime/npy.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace slimserve::runtime {
namespace {

struct NpyType {
  const char* descr;
  DataType dtype;
};
constexpr NpyType kTypes[] = {
    {"<f4", DataType::kFloat32}, {"<f8", DataType::kFloat64}, {"<i8", DataType::kInt64},
    {"<i4", DataType::kInt32},   {"<i2", DataType::kInt16},   {"|i1", DataType::kInt8},
    {"|u1", DataType::kUint8},   {"<u2", DataType::kUint16},  {"<u4", DataType::kUint32},
    {"<u8", DataType::kUint64},  {"|b1", DataType::kBool},    {"<f2", DataType::kFloat16},
};

// Value of `key` in the header dict, e.g. 'descr': '<f4' -> <f4.
std::string HeaderField(const std::string& header, const std::string& key) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t start = header.find(':', k);
  if (start == std::string::npos) return "";
  ++start;
  while (start < header.size() && header[start] == ' ') ++start;
  if (start >= header.size()) return "";
  if (header[start] == '(') return header.substr(start + 1, header.find(')', start) - start - 1);
  if (header[start] == '\'') return header.substr(start + 1, header.find('\'', start + 1) - start - 1);
  return header.substr(start, header.find_first_of(",}", start) - start);
}

}  // namespace

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  char magic[8];
  file.read(magic, 8);
  if (!file || std::string(magic, 6) != "\x93NUMPY") {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a .npy file"));
  }
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t len16 = 0;
    file.read(reinterpret_cast<char*>(&len16), 2);
    header_len = len16;
  } else {
    file.read(reinterpret_cast<char*>(&header_len), 4);
  }
  if (!file || header_len > (1u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' has a bad .npy header"));
  }
  std::string header(header_len, '\0');
  file.read(header.data(), header_len);
  const std::string descr = HeaderField(header, "descr");
  if (HeaderField(header, "fortran_order") == "True") {
    return absl::UnimplementedError(absl::StrCat("'", path, "' is in Fortran order"));
  }
  DataType dtype = DataType::kUndefined;
  for (const NpyType& t : kTypes) {
    if (descr == t.descr || (descr.size() == 3 && descr.substr(1) == std::string(t.descr).substr(1) &&
                             descr[0] == '|')) {
      dtype = t.dtype;
    }
  }
  if (dtype == DataType::kUndefined) {
    return absl::UnimplementedError(absl::StrCat("'", path, "' has unsupported dtype '", descr, "'"));
  }
  Shape shape;
  for (absl::string_view part : absl::StrSplit(HeaderField(header, "shape"), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int64_t d = 0;
    if (!absl::SimpleAtoi(part, &d)) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "' has a bad shape"));
    }
    shape.push_back(d);
  }
  absl::StatusOr<Tensor> t = Tensor::Allocate(dtype, shape);
  if (!t.ok()) return t.status();
  file.read(static_cast<char*>(t->raw_data()), static_cast<std::streamsize>(t->byte_size()));
  if (!file) return absl::InvalidArgumentError(absl::StrCat("'", path, "' is truncated"));
  return t;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  const char* descr = nullptr;
  for (const NpyType& t : kTypes) {
    if (t.dtype == tensor.dtype()) descr = t.descr;
  }
  if (descr == nullptr) {
    return absl::UnimplementedError(absl::StrCat("cannot write ", DataTypeName(tensor.dtype()), " to .npy"));
  }
  std::string shape;
  for (int64_t d : tensor.shape()) absl::StrAppend(&shape, d, ",");
  if (tensor.rank() > 1) shape.pop_back();
  std::string header =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", shape, "), }");
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream file(path, std::ios::binary);
  if (!file) return absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'"));
  const uint16_t len = static_cast<uint16_t>(header.size());
  file.write("\x93NUMPY\x01\x00", 8);
  file.write(reinterpret_cast<const char*>(&len), 2);
  file << header;
  file.write(static_cast<const char*>(tensor.raw_data()), static_cast<std::streamsize>(tensor.byte_size()));
  if (!file) return absl::DataLossError(absl::StrCat("writing '", path, "' failed"));
  return absl::OkStatus();
}

}  // namespace slimserve::runtime
