// The model repository on disk, in Triton's layout:
//
//   <root>/<model>/config.pbtxt          optional: ModelConfig in text format
//   <root>/<model>/<version>/model.onnx  versions are positive integers
//
// Uploads replace a model's folder: written in full next to it, then swapped in
// by renames, so a reader sees the old model or the new one, never a mix.
#ifndef SLIMSERVE_SERVER_CORE_REPOSITORY_H_
#define SLIMSERVE_SERVER_CORE_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/model_config.pb.h"

namespace slimserve::server {

struct ModelFiles {
  inference::ModelConfig config;          // empty when there is no config.pbtxt
  std::map<int64_t, std::string> versions;  // version -> model file path
};

class Repository {
 public:
  explicit Repository(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  // Names of the model folders.
  absl::StatusOr<std::vector<std::string>> ModelNames() const;
  // The model's config and the versions its version policy selects.
  absl::StatusOr<ModelFiles> Read(const std::string& name) const;
  // Stores an upload: `config` as config.pbtxt and `files` ("<version>/<file>"
  // -> bytes) under the model's folder, replacing what was there.
  absl::Status Write(const std::string& name, const inference::ModelConfig& config,
                     const std::map<std::string, std::string>& files) const;

 private:
  std::string root_;
};

// Model names are path components: letters, digits, '_', '-', '.', not
// starting with '.', at most 128 characters.
absl::Status CheckModelName(const std::string& name);

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_REPOSITORY_H_
