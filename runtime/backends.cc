#include "runtime/backends.h"

#include "absl/strings/str_cat.h"
#include "runtime/onednn/backend.h"
#include "runtime/status_macros.h"
#include "runtime/xnnpack/backend.h"

namespace slimserve::runtime {

std::vector<Backend*> BackendSet::pointers() const {
  std::vector<Backend*> out;
  for (const auto& b : backends_) out.push_back(b.get());
  return out;
}

absl::StatusOr<BackendSet> MakeBackends(const std::string& choice, int num_threads) {
  BackendSet set;
  if (choice == "reference") return set;
  if (choice == "auto" || choice == "onednn") {
    ASSIGN_OR_RETURN(std::unique_ptr<onednn::OnednnBackend> onednn, onednn::OnednnBackend::Create({}));
    set.Add(std::move(onednn));
  }
  if (choice == "auto" || choice == "xnnpack") {
    ASSIGN_OR_RETURN(std::unique_ptr<xnnpack::XnnpackBackend> xnnpack, xnnpack::XnnpackBackend::Create({num_threads}));
    set.Add(std::move(xnnpack));
  }
  if (choice == "auto" || choice == "onednn" || choice == "xnnpack") return set;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown backend '", choice, "'; choose one of ", kBackendChoices));
}

}  // namespace slimserve::runtime
