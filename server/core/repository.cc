#include "server/core/repository.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/status_macros.h"
#include "server/core/config.h"

namespace slimserve::server {
namespace fs = std::filesystem;
namespace {

constexpr char kDefaultModelFile[] = "model.onnx";

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// A unique sibling name for temporary folders.
std::string TempName(const std::string& what, const std::string& name) {
  static std::atomic<int> counter{0};
  return absl::StrCat(".", what, "-", name, "-", getpid(), "-", counter++);
}

}  // namespace

absl::Status CheckModelName(const std::string& name) {
  const bool valid = !name.empty() && name.size() <= 128 && name[0] != '.' &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
                     });
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model name '", name, "' is not valid: use letters, digits, '_', '-' and '.', not starting with '.'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Repository::ModelNames() const {
  std::error_code error;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root_, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && CheckModelName(name).ok()) names.push_back(name);
  }
  if (error) {
    return absl::NotFoundError(absl::StrCat("cannot list the model repository ", root_, ": ", error.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<ModelFiles> Repository::Read(const std::string& name) const {
  RETURN_IF_ERROR(CheckModelName(name));
  return ReadFolder(name, (fs::path(root_) / name).string());
}

absl::StatusOr<ModelFiles> Repository::ReadFolder(const std::string& name, const std::string& folder) const {
  const fs::path dir = folder;
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat("no model '", name, "' in the repository ", root_));
  }
  ModelFiles files;
  if (fs::exists(dir / "config.pbtxt")) {
    ASSIGN_OR_RETURN(const std::string text, ReadFile(dir / "config.pbtxt"));
    absl::StatusOr<inference::ModelConfig> config = ParseConfigText(text);
    if (!config.ok()) {
      return absl::InvalidArgumentError(absl::StrCat((dir / "config.pbtxt").string(), ": ", config.status().message()));
    }
    files.config = *std::move(config);
  }
  const std::string file = files.config.default_model_filename().empty() ? kDefaultModelFile
                                                                         : files.config.default_model_filename();
  if (file[0] == '.' || file.find('/') != std::string::npos || file.find('\\') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_model_filename '", file, "' must be a file name inside the version folder"));
  }
  std::map<int64_t, std::string> all;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    int64_t version = 0;
    if (entry.is_directory() && absl::SimpleAtoi(entry.path().filename().string(), &version) && version > 0 &&
        fs::exists(entry.path() / file)) {
      all[version] = (entry.path() / file).string();
    }
  }
  if (all.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no version folder with a ", file,
                                            " (expected ", (dir / "1" / file).string(), ")"));
  }
  const inference::ModelVersionPolicy& policy = files.config.version_policy();
  if (policy.has_all()) {
    files.versions = all;
  } else if (policy.has_specific()) {
    for (int64_t v : policy.specific().versions()) {
      if (!all.count(v)) {
        return absl::NotFoundError(absl::StrCat("model '", name, "' version policy asks for version ", v,
                                                ", which the repository does not have"));
      }
      files.versions[v] = all[v];
    }
  } else {
    const uint32_t keep = std::max<uint32_t>(1, policy.latest().num_versions());
    for (auto it = all.rbegin(); it != all.rend() && files.versions.size() < keep; ++it) {
      files.versions.insert(*it);
    }
  }
  return files;
}

absl::StatusOr<std::string> Repository::Stage(const std::string& name, const inference::ModelConfig& config,
                                              const std::map<std::string, std::string>& files) const {
  RETURN_IF_ERROR(CheckModelName(name));
  for (const auto& [path, bytes] : files) {
    const std::vector<std::string> parts = absl::StrSplit(path, '/');
    int64_t version = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &version) || version <= 0 || parts[1].empty() ||
        parts[1][0] == '.' || parts[1].find('\\') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "upload file 'file:", path, "' must be named file:<version>/<file name>, e.g. file:1/model.onnx"));
    }
  }
  std::error_code error;
  const fs::path staging = fs::path(root_) / TempName("upload", name);
  fs::create_directories(staging, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", staging.string(), ": ", error.message()));
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  absl::Status status = WriteFile(staging / "config.pbtxt", text);
  for (const auto& [path, bytes] : files) {
    if (!status.ok()) break;
    fs::create_directories((staging / path).parent_path(), error);
    status = WriteFile(staging / path, bytes);
  }
  if (!status.ok()) {
    Discard(staging.string());
    return status;
  }
  return staging.string();
}

absl::Status Repository::Commit(const std::string& staged, const std::string& name) const {
  const fs::path target = fs::path(root_) / name;
  const fs::path old = fs::path(root_) / TempName("replaced", name);
  std::error_code error;
  const bool replacing = fs::exists(target);
  if (replacing) fs::rename(target, old, error);
  if (!error) fs::rename(staged, target, error);
  if (error) {
    std::error_code ignored;
    if (replacing && !fs::exists(target)) fs::rename(old, target, ignored);  // put the old one back
    Discard(staged);
    return absl::InternalError(absl::StrCat("cannot store model '", name, "': ", error.message()));
  }
  fs::remove_all(old, error);
  return absl::OkStatus();
}

void Repository::Discard(const std::string& staged) const {
  std::error_code ignored;
  fs::remove_all(staged, ignored);
}

}  // namespace slimserve::server
