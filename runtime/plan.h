// Plan: one specialization of a graph for one set of input shapes (and the
// values of inputs that decide shapes), built by BuildPlan and run by the
// Executor. Internal to runtime/; see executor.h for the contract.
//
// A plan holds value slots (constants, graph inputs, arena buffers, views of
// other slots), the compiled steps in execution order, and a pool of
// execution contexts (arena plus bound tensors), one per concurrent run.
// Immutable after BuildPlan except for the pool, which `mu` guards.
#ifndef SLIMSERVE_RUNTIME_PLAN_H_
#define SLIMSERVE_RUNTIME_PLAN_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "runtime/graph.h"
#include "runtime/kernel.h"

namespace slimserve::runtime {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

class Plan {
 public:
  struct Slot {
    enum class Kind { kUnset, kConstant, kInput, kArena, kAlias };
    Kind kind = Kind::kUnset;
    TensorDesc desc;     // dtype, shape, layout
    Tensor constant;     // kConstant
    int input = -1;      // kInput: index into the graph inputs
    int64_t offset = 0;  // kArena
    int64_t bytes = 0;   // kArena
    int alias = -1;      // kAlias: the slot whose memory this one views
  };
  struct Step {
    const Node* node = nullptr;  // null for layout conversions
    std::unique_ptr<Kernel> kernel;
    Backend* backend = nullptr;  // that compiled the kernel
    std::vector<int> inputs;   // slot ids, -1 for omitted
    std::vector<int> outputs;  // slot ids, -1 for omitted
  };
  // Memory and bound tensors for one run at a time.
  struct Context {
    std::unique_ptr<void, FreeDeleter> arena;
    std::vector<std::vector<Tensor>> inputs;   // per step
    std::vector<std::vector<Tensor>> outputs;  // per step
    std::vector<Tensor> slots;
  };
  // A step input (or, with step -1, a context slot) whose memory is a graph
  // input: rebound on every run.
  struct InputBinding {
    int step;
    int position;
    int input;
  };

  std::vector<Slot> slots;
  std::vector<Step> steps;
  std::vector<int> outputs;  // slot ids of the graph outputs, row-major
  std::vector<Backend*> backends;  // those that compiled steps
  std::vector<InputBinding> input_bindings;
  int64_t arena_bytes = 0;
  int64_t scratch_offset = 0;
  int64_t folded_nodes = 0;
  std::string strategy;
  double measured_ms = 0;
  // Whether a kernel of the first backend depends on the variant it was
  // built for (CompileRequest::variant_sensitive).
  bool variant_sensitive = false;

  int Root(int slot) const;
  std::unique_ptr<Context> NewContext() const;

  absl::Mutex mu;
  std::vector<std::unique_ptr<Context>> pool ABSL_GUARDED_BY(mu);
  // ExecutorOptions::profile: time spent in each step over profiled_runs.
  std::vector<int64_t> step_ns ABSL_GUARDED_BY(mu);
  int64_t profiled_runs ABSL_GUARDED_BY(mu) = 0;
};

struct PlanInputs {
  const Graph& graph;
  absl::Span<const Tensor> inputs;
  const std::vector<bool>& input_in_key;
  std::vector<Backend*> backends;  // in order of preference, reference last
  int num_threads;
  int64_t max_tensor_bytes;
  int variant;   // passed to the first backend's Compile (the others get 0)
  bool measure;  // likewise
  std::atomic<int64_t>* kernels_compiled;  // incremented per compiled kernel
  KernelChoices* choices;                  // shared by the variants built for the same inputs
};

absl::StatusOr<std::shared_ptr<Plan>> BuildPlan(const PlanInputs& in);

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_PLAN_H_
