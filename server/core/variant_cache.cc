#include "server/core/variant_cache.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"
#include "server/core/storage.h"

namespace slimserve::server {

namespace fs = std::filesystem;

VariantCache::VariantCache(std::string root, int64_t max_bytes) : root_(std::move(root)), max_bytes_(max_bytes) {
  std::error_code error;
  fs::create_directories(root_, error);
  for (const auto& entry : fs::directory_iterator(root_, error)) {
    const std::string name = entry.path().filename().string();
    v1::Variant record;
    if (name.find('.') != std::string::npos) {  // a write that did not finish
      fs::remove_all(entry.path(), error);
      continue;
    }
    if (ReadMessage(entry.path().string() + "/variant.pb", record).ok() && record.cache_key() == name) {
      records_[name] = record;
    } else {
      std::cerr << "slimserve: discarding the unreadable variant cache entry " << entry.path().string() << "\n";
      fs::remove_all(entry.path(), error);
    }
  }
}

std::string VariantCache::Key(const std::string& model_sha256, const std::string& profile_text,
                              const std::string& data_sha256) {
  return Sha256Hex(absl::StrCat(model_sha256, "\n", profile_text, "\n", data_sha256, "\n", CpuIsa())).substr(0, 32);
}

absl::StatusOr<CachedVariant> VariantCache::Get(const std::string& key) {
  CachedVariant found;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(key);
    if (it == records_.end()) return absl::NotFoundError("not in the variant cache");
    found.record = it->second;
  }
  found.onnx_path = Folder(key) + "/model.onnx";
  absl::StatusOr<std::string> bytes = ReadFile(found.onnx_path);
  if (!bytes.ok() || Sha256Hex(*bytes) != found.record.onnx_sha256()) {
    std::cerr << "slimserve: variant cache entry " << key << " (" << found.record.served_name()
              << ") failed its checksum; discarded, it will be rebuilt\n";
    Remove(key);
    return absl::NotFoundError(absl::StrCat("the cached variant ", found.record.served_name(),
                                            " was corrupt and has been discarded"));
  }
  return found;
}

absl::StatusOr<CachedVariant> VariantCache::Put(const std::string& key, const std::string& onnx, v1::Variant record) {
  record.set_cache_key(key);
  record.set_onnx_sha256(Sha256Hex(onnx));
  record.mutable_measurements()->set_size_bytes(static_cast<int64_t>(onnx.size()));
  const std::string staging = absl::StrCat(Folder(key), ".tmp", getpid());
  std::error_code error;
  fs::remove_all(staging, error);
  absl::Status status = WriteFileAtomically(staging + "/model.onnx", onnx);
  if (status.ok()) status = WriteMessage(staging + "/variant.pb", record);
  std::lock_guard<std::mutex> lock(mu_);
  if (status.ok()) {
    fs::remove_all(Folder(key), error);
    fs::rename(staging, Folder(key), error);
    if (error) status = absl::UnavailableError(absl::StrCat("cannot move ", staging, " into the variant cache: ", error.message()));
  }
  if (!status.ok()) {
    fs::remove_all(staging, error);
    return status;
  }
  records_[key] = record;
  return CachedVariant{record, Folder(key) + "/model.onnx"};
}

absl::Status VariantCache::Update(const v1::Variant& record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!records_.count(record.cache_key())) return absl::NotFoundError("not in the variant cache");
  RETURN_IF_ERROR(WriteMessage(Folder(record.cache_key()) + "/variant.pb", record));
  records_[record.cache_key()] = record;
  return absl::OkStatus();
}

void VariantCache::Remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  records_.erase(key);
  std::error_code error;
  fs::remove_all(Folder(key), error);
}

std::vector<v1::Variant> VariantCache::Records() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::Variant> out;
  for (const auto& [key, record] : records_) out.push_back(record);
  return out;
}

std::vector<v1::Variant> VariantCache::Evict(const std::string& keep) {
  std::vector<v1::Variant> candidates, removed;
  int64_t total = 0;
  for (const v1::Variant& r : Records()) {
    total += r.measurements().size_bytes();
    if (r.cache_key() != keep && !r.promoted()) candidates.push_back(r);
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& a, const auto& b) { return a.created_unix_ms() < b.created_unix_ms(); });
  for (const v1::Variant& r : candidates) {
    if (total <= max_bytes_) break;
    Remove(r.cache_key());
    total -= r.measurements().size_bytes();
    removed.push_back(r);
  }
  return removed;
}

}  // namespace slimserve::server
