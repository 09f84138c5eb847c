// Built variants on disk, content-addressed: one folder per key with the
// variant's ONNX file and its record (profile, measurements, checksum).
//
//   <root>/<key>/model.onnx
//   <root>/<key>/variant.pb     slimserve.v1.Variant
//
// The key is a digest of the original model's bytes, the canonical profile,
// the calibration data's digest and the CPU's instruction set, so an
// identical request finds the entry and a different CPU does not. Entries
// are written to a temporary folder and renamed into place; the model's
// checksum is verified on every read, and an entry that fails it is removed.
// Eviction keeps the total under a byte budget, oldest first, never a
// promoted variant. Thread-safe.
#ifndef SLIMSERVE_SERVER_CORE_VARIANT_CACHE_H_
#define SLIMSERVE_SERVER_CORE_VARIANT_CACHE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "proto/compression.pb.h"

namespace slimserve::server {

struct CachedVariant {
  v1::Variant record;
  std::string onnx_path;
};

class VariantCache {
 public:
  // Reads the records of the entries under `root` (created if missing).
  VariantCache(std::string root, int64_t max_bytes);

  static std::string Key(const std::string& model_sha256, const std::string& profile_text,
                         const std::string& data_sha256);

  // The entry with its model file verified; NotFound when there is none, or
  // it was corrupt (then it is gone, and the message says so).
  absl::StatusOr<CachedVariant> Get(const std::string& key);
  // Stores `onnx` under `key` (record.cache_key, onnx_sha256 and the size are
  // set here), replacing an entry of the same key.
  absl::StatusOr<CachedVariant> Put(const std::string& key, const std::string& onnx, v1::Variant record);
  // Rewrites an entry's record (promotion, measurements).
  absl::Status Update(const v1::Variant& record);
  void Remove(const std::string& key);
  std::vector<v1::Variant> Records() const;
  // Removes the oldest entries until the total fits the budget, never
  // `keep` or a promoted one; returns the removed records.
  std::vector<v1::Variant> Evict(const std::string& keep);

 private:
  std::string Folder(const std::string& key) const { return root_ + "/" + key; }

  const std::string root_;
  const int64_t max_bytes_;
  mutable std::mutex mu_;
  std::map<std::string, v1::Variant> records_ ABSL_GUARDED_BY(mu_);  // by key
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_VARIANT_CACHE_H_
