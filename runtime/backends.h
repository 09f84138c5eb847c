// Builds the list of backends an Executor should try, from a user's choice.
//
//   ASSIGN_OR_RETURN(BackendSet set, MakeBackends("auto"));
//   options.backends = set.pointers();
#ifndef SLIMSERVE_RUNTIME_BACKENDS_H_
#define SLIMSERVE_RUNTIME_BACKENDS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/kernel.h"

namespace slimserve::runtime {

// Owns backends; the Executor borrows them, so a BackendSet must outlive every
// Executor that uses it. Thread-safe after construction.
class BackendSet {
 public:
  std::vector<Backend*> pointers() const;
  void Add(std::unique_ptr<Backend> backend) { backends_.push_back(std::move(backend)); }

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
};

// "auto": oneDNN, then XNNPACK, then reference (measured where several claim a
// node); "onednn", "xnnpack": that backend, then reference for the rest;
// "reference": reference only. `num_threads` sizes the thread pools of
// backends that own one (XNNPACK); 0 means one per core.
absl::StatusOr<BackendSet> MakeBackends(const std::string& choice, int num_threads = 0);

// The names MakeBackends accepts, for --help texts.
inline constexpr const char* kBackendChoices = "auto|onednn|xnnpack|reference";

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_BACKENDS_H_
