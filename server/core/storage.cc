#include "server/core/storage.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace slimserve::server {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read '", path, "'"));
  return bytes.str();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  std::error_code error;
  fs::create_directories(fs::path(path).parent_path(), error);
  const std::string temporary = absl::StrCat(path, ".tmp", getpid());
  FILE* f = std::fopen(temporary.c_str(), "wb");
  bool ok = f != nullptr && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (f != nullptr) ok = std::fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
  if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write '", path, "' (disk full or not writable?)"));
  }
  return absl::OkStatus();
}

absl::Status ReadMessage(const std::string& path, google::protobuf::MessageLite& message) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  if (!message.ParseFromString(*bytes)) return absl::DataLossError(absl::StrCat("'", path, "' is corrupt"));
  return absl::OkStatus();
}

absl::Status WriteMessage(const std::string& path, const google::protobuf::MessageLite& message) {
  return WriteFileAtomically(path, message.SerializeAsString());
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

std::string CpuIsa() {
  std::string isa = "x86-64";
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) isa += "+avx2";
  if (__builtin_cpu_supports("avx512f")) isa += "+avx512f";
  if (__builtin_cpu_supports("avx512vnni")) isa += "+avx512vnni";
  if (__builtin_cpu_supports("avx512bf16")) isa += "+avx512bf16";
  return isa;
}

}  // namespace slimserve::server
