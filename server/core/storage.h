// Files the server keeps next to its repository (variant cache, data sets,
// job records): whole-file reads and writes that a crash cannot leave half
// done, content digests, and the CPU's instruction set as part of cache keys.
#ifndef SLIMSERVE_SERVER_CORE_STORAGE_H_
#define SLIMSERVE_SERVER_CORE_STORAGE_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message_lite.h"

namespace slimserve::server {

absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes a temporary file next to `path`, flushes it, then renames it over
// `path`: readers see the old contents or the new, never a part. Creates
// missing parent folders.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes);

absl::Status ReadMessage(const std::string& path, google::protobuf::MessageLite& message);
absl::Status WriteMessage(const std::string& path, const google::protobuf::MessageLite& message);

// SHA-256 of `bytes`, 64 hex digits.
std::string Sha256Hex(const std::string& bytes);

// The instruction-set extensions that decide which kernels run here, e.g.
// "x86-64+avx2+avx512f+avx512vnni+avx512bf16": variants measured on one CPU
// are not reused on another.
std::string CpuIsa();

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_STORAGE_H_
