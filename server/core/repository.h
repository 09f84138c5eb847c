// The model repository on disk, in Triton's layout:
//
//   <root>/<model>/config.pbtxt          optional: ModelConfig in text format
//   <root>/<model>/<version>/model.onnx  versions are positive integers
//
// Uploads are written in full to a staging folder next to the models, loaded
// from there, and only then swapped in by renames: a reader sees the old model
// or the new one, never a mix, and an upload that fails to load leaves the
// repository as it was.
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
  // The same for a model folder anywhere (a staged upload).
  absl::StatusOr<ModelFiles> ReadFolder(const std::string& name, const std::string& dir) const;

  // Writes an upload, `config` as config.pbtxt and `files` ("<version>/<file>"
  // -> bytes), to a new staging folder; returns its path.
  absl::StatusOr<std::string> Stage(const std::string& name, const inference::ModelConfig& config,
                                    const std::map<std::string, std::string>& files) const;
  // Makes a staged folder model `name`, replacing what was there.
  absl::Status Commit(const std::string& staged, const std::string& name) const;
  void Discard(const std::string& staged) const;

 private:
  std::string root_;
};

// Model names are path components: letters, digits, '_', '-', '.', not
// starting with '.', at most 128 characters.
absl::Status CheckModelName(const std::string& name);

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_REPOSITORY_H_
