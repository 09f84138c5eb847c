#include "server/core/model_manager.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"

namespace slimserve::server {

ModelManager::ModelManager(ManagerOptions options, MetricsSink* metrics)
    : options_(std::move(options)), metrics_(metrics), repository_(options_.repository) {}

absl::Status ModelManager::LoadAtStart(const std::vector<std::string>& names) {
  std::vector<std::string> to_load = names;
  if (names.empty() || (names.size() == 1 && names[0] == "*")) {
    ASSIGN_OR_RETURN(to_load, repository_.ModelNames());
  }
  absl::Status first;
  std::lock_guard<std::mutex> lock(load_mu_);
  for (const std::string& name : to_load) {
    absl::Status status = LoadFromRepository(name);
    if (!status.ok()) std::cerr << "slimserve: " << status.message() << "\n";
    first.Update(status);
  }
  return first;
}

absl::Status ModelManager::Load(const std::string& name, const std::optional<inference::ModelConfig>& config,
                                const std::map<std::string, std::string>& files) {
  if (!options_.explicit_control) {
    return absl::FailedPreconditionError(
        "loading models over the API needs --model-control-mode explicit; this server loads its repository at start");
  }
  RETURN_IF_ERROR(CheckModelName(name));
  if (!files.empty() && !config.has_value()) {
    return absl::InvalidArgumentError("an upload needs a 'config' parameter (ModelConfig as JSON) with its files");
  }
  std::lock_guard<std::mutex> lock(load_mu_);
  if (!config.has_value()) return LoadFromRepository(name);
  if (files.empty()) {
    return absl::InvalidArgumentError(
        "a 'config' parameter without 'file:<version>/model.onnx' parameters: nothing to upload");
  }
  ASSIGN_OR_RETURN(const std::string staged, repository_.Stage(name, *config, files));
  return LoadFromRepository(name, staged);
}

absl::Status ModelManager::LoadFromRepository(const std::string& name, const std::string& staged) {
  bool serving = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    serving = models_.count(name) && !models_[name].versions.empty();
  }
  if (!serving) SetState(name, "LOADING", "");
  absl::StatusOr<ModelFiles> files = staged.empty() ? repository_.Read(name) : repository_.ReadFolder(name, staged);
  std::map<int64_t, std::shared_ptr<Model>> versions;
  absl::Status status = files.status();
  for (const auto& [version, path] : files.ok() ? files->versions : std::map<int64_t, std::string>{}) {
    ModelSource source{name, version, path, "", files->config};
    if (!staged.empty()) source.stored_path = repository_.root() + "/" + name + path.substr(staged.size());
    absl::StatusOr<std::shared_ptr<Model>> model = Model::Load(std::move(source), options_.model, metrics_);
    if (!model.ok()) {
      status = model.status();
      break;
    }
    versions[version] = *std::move(model);
  }
  if (!staged.empty()) {
    // The models read their files at load; the folder can move now.
    if (status.ok()) {
      status = repository_.Commit(staged, name);
    } else {
      repository_.Discard(staged);
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  Entry& entry = models_[name];
  if (!status.ok()) {
    if (entry.versions.empty() && absl::IsNotFound(status)) {
      models_.erase(name);  // nothing by that name: no entry either
      return status;
    }
    // A failed reload leaves the versions that were serving in place.
    entry.state = entry.versions.empty() ? "UNAVAILABLE" : "READY";
    entry.reason = std::string(status.message());
    return status;
  }
  entry.versions.swap(versions);  // the old versions drain as their last requests finish
  entry.state = "READY";
  entry.reason.clear();
  lock.unlock();
  if (on_load_) on_load_(name);
  return absl::OkStatus();
}

absl::Status ModelManager::Unload(const std::string& name) {
  if (!options_.explicit_control) {
    return absl::FailedPreconditionError("unloading models over the API needs --model-control-mode explicit");
  }
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::map<int64_t, std::shared_ptr<Model>> unloaded;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded"));
  }
  unloaded.swap(it->second.versions);
  std::map<std::string, std::shared_ptr<Model>> variants;
  variants.swap(it->second.variants);
  it->second.promoted.clear();
  it->second.state = "UNAVAILABLE";
  it->second.reason = "unloaded";
  return absl::OkStatus();
}

void ModelManager::SetState(const std::string& name, const std::string& state, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  models_[name].state = state;
  models_[name].reason = reason;
}

absl::StatusOr<std::shared_ptr<Model>> ModelManager::Get(const std::string& name, const std::string& version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  const size_t dot = name.rfind('.');
  if (it == models_.end() && dot != std::string::npos) {
    auto base = models_.find(name.substr(0, dot));
    if (base != models_.end()) {
      auto variant = base->second.variants.find(name.substr(dot + 1));
      if (variant != base->second.variants.end() && (version.empty() || version == "1")) return variant->second;
    }
  }
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
  const Entry& entry = it->second;
  if (version.empty() && !entry.promoted.empty()) return entry.variants.at(entry.promoted);
  if (entry.versions.empty()) {
    return absl::UnavailableError(absl::StrCat("model '", name, "' is not ready (", entry.state,
                                               entry.reason.empty() ? "" : ": " + entry.reason, ")"));
  }
  if (version.empty()) return entry.versions.rbegin()->second;
  int64_t v = 0;
  auto found = absl::SimpleAtoi(version, &v) ? entry.versions.find(v) : entry.versions.end();
  if (found == entry.versions.end()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no loaded version '", version, "'"));
  }
  return found->second;
}

std::vector<std::shared_ptr<Model>> ModelManager::Loaded(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Model>> loaded;
  for (const auto& [model_name, entry] : models_) {
    if (name.empty() || model_name == name) {
      for (const auto& [version, model] : entry.versions) loaded.push_back(model);
    }
    for (const auto& [variant, model] : entry.variants) {
      if (name.empty() || model->name() == name) loaded.push_back(model);
    }
  }
  return loaded;
}

std::vector<std::string> ModelManager::Versions(const std::string& name) const {
  std::vector<std::string> versions;
  for (const auto& model : Loaded(name)) versions.push_back(model->version_text());
  return versions;
}

std::vector<ModelIndexEntry> ModelManager::Index() const {
  std::map<std::string, ModelIndexEntry> index;
  absl::StatusOr<std::vector<std::string>> names = repository_.ModelNames();
  for (const std::string& name : names.ok() ? *names : std::vector<std::string>{}) {
    index[name] = {name, "", "UNAVAILABLE", "not loaded"};
  }
  std::vector<ModelIndexEntry> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, entry] : models_) index[name] = {name, "", entry.state, entry.reason};
  for (const auto& [name, e] : index) {
    auto it = models_.find(name);
    if (it == models_.end() || it->second.versions.empty()) {
      out.push_back(e);
      continue;
    }
    for (const auto& [version, model] : it->second.versions) out.push_back({name, model->version_text(), e.state, e.reason});
    for (const auto& [variant, model] : it->second.variants) out.push_back({model->name(), "1", "READY", ""});
  }
  return out;
}

absl::Status ModelManager::AddVariant(const std::string& base, const std::string& variant, std::shared_ptr<Model> model) {
  std::shared_ptr<Model> replaced;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(base);
  if (it == models_.end() || it->second.versions.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("model '", base, "' is not loaded"));
  }
  replaced = std::move(it->second.variants[variant]);  // drains once the lock is released
  it->second.variants[variant] = std::move(model);
  return absl::OkStatus();
}

absl::Status ModelManager::RemoveVariant(const std::string& base, const std::string& variant) {
  std::shared_ptr<Model> removed;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(base);
  if (it == models_.end() || !it->second.variants.count(variant)) return absl::OkStatus();
  if (it->second.promoted == variant) {
    return absl::FailedPreconditionError(absl::StrCat("'", base, ".", variant, "' is promoted; demote it first"));
  }
  removed = std::move(it->second.variants[variant]);
  it->second.variants.erase(variant);
  return absl::OkStatus();
}

absl::Status ModelManager::Promote(const std::string& base, const std::string& variant) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(base);
  if (it == models_.end() || it->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", base, "' is not loaded"));
  }
  if (!variant.empty() && !it->second.variants.count(variant)) {
    return absl::NotFoundError(absl::StrCat("model '", base, "' has no variant '", variant, "' being served"));
  }
  it->second.promoted = variant;
  return absl::OkStatus();
}

std::string ModelManager::Promoted(const std::string& base) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(base);
  return it == models_.end() ? "" : it->second.promoted;
}

bool ModelManager::ServesVariant(const std::string& base, const std::string& variant) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(base);
  return it != models_.end() && it->second.variants.count(variant) > 0;
}

}  // namespace slimserve::server
