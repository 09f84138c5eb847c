#include "runtime/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/status_macros.h"

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

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, const std::string& name) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != "\x93NUMPY") {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a .npy file"));
  }
  size_t header_len = 0, offset = 0;
  if (bytes[6] == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8;
    offset = 10;
  } else {
    if (bytes.size() < 12) return absl::InvalidArgumentError(absl::StrCat("'", name, "' has a bad .npy header"));
    for (int i = 3; i >= 0; --i) header_len = header_len << 8 | static_cast<uint8_t>(bytes[8 + i]);
    offset = 12;
  }
  if (header_len > (1u << 20) || offset + header_len > bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' has a bad .npy header"));
  }
  const std::string header(bytes.substr(offset, header_len));
  const std::string descr = HeaderField(header, "descr");
  if (HeaderField(header, "fortran_order") == "True") {
    return absl::UnimplementedError(absl::StrCat("'", name, "' is in Fortran order"));
  }
  DataType dtype = DataType::kUndefined;
  for (const NpyType& t : kTypes) {
    if (descr == t.descr || (descr.size() == 3 && descr.substr(1) == std::string(t.descr).substr(1) &&
                             descr[0] == '|')) {
      dtype = t.dtype;
    }
  }
  if (dtype == DataType::kUndefined) {
    return absl::UnimplementedError(absl::StrCat("'", name, "' has unsupported dtype '", descr, "'"));
  }
  Shape shape;
  for (absl::string_view part : absl::StrSplit(HeaderField(header, "shape"), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int64_t d = 0;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' has a bad shape"));
    }
    shape.push_back(d);
  }
  absl::StatusOr<Tensor> t = Tensor::Allocate(dtype, shape);
  if (!t.ok()) return t.status();
  const absl::string_view data = bytes.substr(offset + header_len);
  if (data.size() < static_cast<size_t>(t->byte_size())) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is truncated"));
  }
  std::memcpy(t->raw_data(), data.data(), t->byte_size());
  return t;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::ostringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

// Little-endian integers in a zip file.
uint64_t Le(absl::string_view bytes, size_t at, int size) {
  uint64_t v = 0;
  for (int i = size - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

}  // namespace

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseNpy(bytes, path);
}

// A .npz is a zip of .npy members. Sizes and offsets come from the central
// directory (the local headers of numpy's zip64 members may not have them).
absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadNpz(const std::string& path) {
  ASSIGN_OR_RETURN(std::string file, ReadFile(path));
  const absl::string_view bytes = file;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a readable .npz: ", why));
  };
  // The end-of-central-directory record: within the last 64 KiB + 22 bytes.
  size_t end = std::string::npos;
  const size_t lowest = bytes.size() > 65557 ? bytes.size() - 65557 : 0;
  for (size_t i = bytes.size(); i >= lowest + 22 && end == std::string::npos; --i) {
    if (Le(bytes, i - 22, 4) == 0x06054b50) end = i - 22;
  }
  if (end == std::string::npos) return bad("no zip directory (truncated?)");
  uint64_t entries = Le(bytes, end + 10, 2), dir = Le(bytes, end + 16, 4);
  if (dir == 0xFFFFFFFF || entries == 0xFFFF) {  // zip64: its own end record, located just before
    if (end < 20 || Le(bytes, end - 20, 4) != 0x07064b50) return bad("zip64 locator missing");
    const uint64_t end64 = Le(bytes, end - 20 + 8, 8);
    if (end64 + 56 > bytes.size() || Le(bytes, end64, 4) != 0x06064b50) return bad("zip64 record missing");
    entries = Le(bytes, end64 + 32, 8);
    dir = Le(bytes, end64 + 48, 8);
  }
  std::vector<std::pair<std::string, Tensor>> members;
  size_t at = dir;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > bytes.size() || Le(bytes, at, 4) != 0x02014b50) return bad("broken directory entry");
    const uint64_t method = Le(bytes, at + 10, 2), name_len = Le(bytes, at + 28, 2),
                   extra_len = Le(bytes, at + 30, 2), comment_len = Le(bytes, at + 32, 2);
    uint64_t size = Le(bytes, at + 24, 4), local = Le(bytes, at + 42, 4);
    if (at + 46 + name_len + extra_len > bytes.size()) return bad("broken directory entry");
    std::string name(bytes.substr(at + 46, name_len));
    // Zip64 extra field: the 64-bit uncompressed size, compressed size and
    // offset, each only if its 32-bit field is 0xFFFFFFFF.
    for (size_t x = at + 46 + name_len; x + 4 <= at + 46 + name_len + extra_len;) {
      const uint64_t id = Le(bytes, x, 2), len = Le(bytes, x + 2, 2);
      if (id == 1) {
        size_t field = x + 4;
        if (size == 0xFFFFFFFF) {
          size = Le(bytes, field, 8);
          field += 8;
        }
        if (Le(bytes, at + 20, 4) == 0xFFFFFFFF) field += 8;
        if (local == 0xFFFFFFFF) local = Le(bytes, field, 8);
      }
      x += 4 + len;
    }
    if (method != 0) {
      return absl::UnimplementedError(absl::StrCat("'", path, "' member '", name,
                                                   "' is compressed; write the file with numpy.savez, not "
                                                   "savez_compressed"));
    }
    if (local + 30 > bytes.size() || Le(bytes, local, 4) != 0x04034b50) return bad("broken member header");
    const uint64_t data = local + 30 + Le(bytes, local + 26, 2) + Le(bytes, local + 28, 2);
    if (data + size > bytes.size()) return bad(absl::StrCat("member '", name, "' is truncated"));
    if (absl::EndsWith(name, ".npy")) name.resize(name.size() - 4);
    ASSIGN_OR_RETURN(Tensor t, ParseNpy(bytes.substr(data, size), absl::StrCat(path, ":", name)));
    members.emplace_back(std::move(name), std::move(t));
    at += 46 + name_len + extra_len + comment_len;
  }
  return members;
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
