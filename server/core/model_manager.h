// The models a server serves: loads them from the repository (all at start,
// or on request in explicit mode), stores uploads, publishes each load by
// swapping the model's version table, and keeps the old versions serving when
// a reload fails. Thread-safe.
//
// States per model, as RepositoryIndex reports them:
//   LOADING -> READY -> UNAVAILABLE (unloaded; or the load failed)
// A model that is READY stays READY while a new load of it is under way.
// Compressed variants of a model are served beside it under "<model>.<variant>".
#ifndef SLIMSERVE_SERVER_CORE_MODEL_MANAGER_H_
#define SLIMSERVE_SERVER_CORE_MODEL_MANAGER_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/metrics.h"
#include "server/core/model.h"
#include "server/core/repository.h"

namespace slimserve::server {

struct ManagerOptions {
  std::string repository;
  bool explicit_control = false;  // load and unload over the API
  ModelOptions model;
};

struct ModelIndexEntry {
  std::string name;
  std::string version;  // empty when no version is loaded
  std::string state;    // READY, LOADING, UNAVAILABLE
  std::string reason;
};

class ModelManager {
 public:
  ModelManager(ManagerOptions options, MetricsSink* metrics);

  // Loads `names` from the repository ("*" or none given: every model in it).
  // Every model is tried; the first failure is returned.
  absl::Status LoadAtStart(const std::vector<std::string>& names);

  // Loads (or reloads) `name`. With `config` and `files`, an upload: stored in
  // the repository first. Explicit control mode only.
  absl::Status Load(const std::string& name, const std::optional<inference::ModelConfig>& config,
                    const std::map<std::string, std::string>& files);
  // Stops serving `name`; requests already accepted finish. Explicit mode only.
  absl::Status Unload(const std::string& name);

  // The model to run: `version` empty means the latest loaded one.
  absl::StatusOr<std::shared_ptr<Model>> Get(const std::string& name, const std::string& version) const;
  // Every loaded version of `name` (or of every model, for an empty name).
  std::vector<std::shared_ptr<Model>> Loaded(const std::string& name) const;
  // Versions loaded for `name`, oldest first.
  std::vector<std::string> Versions(const std::string& name) const;
  // Models in the repository and the loaded ones, with their state.
  std::vector<ModelIndexEntry> Index() const;

  // Compressed variants. A variant `v` of model `m` is a Model of its own,
  // named "m.v", served beside m's versions; Get("m.v", "") finds it, and
  // Get("m", "") finds the promoted variant if there is one.
  // Serves `model` as variant `variant` of the loaded model `base`,
  // replacing one of that name (which drains).
  absl::Status AddVariant(const std::string& base, const std::string& variant, std::shared_ptr<Model> model);
  // Stops serving a variant; the promoted one must be demoted first.
  absl::Status RemoveVariant(const std::string& base, const std::string& variant);
  // Routes the bare name to `variant`, or back to the latest version for "".
  absl::Status Promote(const std::string& base, const std::string& variant);
  std::string Promoted(const std::string& base) const;
  bool ServesVariant(const std::string& base, const std::string& variant) const;
  const ModelOptions& model_options() const { return options_.model; }
  // Called with the model's name after every load that succeeds (also at
  // start), on the loading thread: the compression service re-serves the
  // model's cached variants from it. Set before the first load.
  void SetLoadListener(std::function<void(const std::string&)> listener) { on_load_ = std::move(listener); }

 private:
  struct Entry {
    std::string state = "UNAVAILABLE";
    std::string reason;
    std::map<int64_t, std::shared_ptr<Model>> versions;
    std::map<std::string, std::shared_ptr<Model>> variants;
    std::string promoted;  // a key of variants, or empty
  };
  // Loads `name` from its repository folder, or from `staged` (an upload,
  // committed to the repository only if every version loads).
  absl::Status LoadFromRepository(const std::string& name, const std::string& staged = "");
  void SetState(const std::string& name, const std::string& state, const std::string& reason);

  const ManagerOptions options_;
  MetricsSink* const metrics_;
  const Repository repository_;
  std::mutex load_mu_;  // one load or unload at a time
  mutable std::mutex mu_;
  std::map<std::string, Entry> models_;
  std::function<void(const std::string&)> on_load_;
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_MODEL_MANAGER_H_
