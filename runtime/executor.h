// Executor: runs a Graph, "create once, run many".
//
// For each distinct set of input shapes the executor builds a Plan once:
// shape inference, constant folding of everything computable from shapes and
// constants (Shape/Gather/Concat/Reshape subgraphs of dynamic-batch models),
// one compiled Kernel per remaining node from the first backend that claims it
// (or the fastest, measured, when several do), and a memory plan that packs
// every activation into one arena by liveness. A run then binds the inputs and
// calls the kernels; after the first run of a shape it compiles and allocates
// nothing (ExecutorStats counts).
//
// Thread-safe: concurrent Run calls each take their own arena from a pool.
//
//   ExecutorOptions options;
//   options.num_threads = 2;
//   ASSIGN_OR_RETURN(auto executor, Executor::Create(std::move(graph), options));
//   ASSIGN_OR_RETURN(std::vector<Tensor> outputs, executor->Run({input}));
#ifndef SLIMSERVE_RUNTIME_EXECUTOR_H_
#define SLIMSERVE_RUNTIME_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "runtime/graph.h"
#include "runtime/kernel.h"
#include "runtime/tensor.h"

namespace slimserve::runtime {

struct ExecutorOptions {
  // Intra-op threads for every kernel; 0 means one per core.
  int num_threads = 0;
  // Backends tried for each node, in order of preference; borrowed, they must
  // outlive the executor. The reference backend is always tried last.
  std::vector<Backend*> backends;
  // Let backends time their alternatives (e.g. direct vs Winograd
  // convolution), and build a plan per backend order and backend variant,
  // keeping the one that runs fastest on the first inputs of each shape.
  bool measure_kernels = true;
  // Largest tensor any input, constant or activation may have.
  int64_t max_tensor_bytes = int64_t{4} << 30;
  // Plans (input-shape specializations) kept; the least recently built goes.
  size_t max_plans = 16;
  // Time every kernel of every Run; Prepare then reports the mean per node.
  bool profile = false;
};

struct ExecutorStats {
  int64_t plans_built = 0;
  int64_t kernels_compiled = 0;
  int64_t arenas_allocated = 0;
  int64_t runs = 0;
};

// Which backend runs each node for one set of input shapes.
struct PlanSummary {
  struct Entry {
    std::string node;
    std::string op_type;
    std::string backend;
    double mean_ms = 0;  // per run, with ExecutorOptions::profile
    std::string kernel;  // Kernel::description()
  };
  std::vector<Entry> nodes;  // only nodes that run; folded ones are absent
  int64_t folded_nodes = 0;
  int64_t arena_bytes = 0;
  // Which candidate plan was kept ("onednn first, variant 2") and its
  // measured run time; 0 when there was no choice.
  std::string strategy;
  double measured_ms = 0;
  int64_t profiled_runs = 0;
};

class Plan;

class Executor {
 public:
  // Fails when the graph is invalid or uses an op no backend supports.
  static absl::StatusOr<std::unique_ptr<Executor>> Create(Graph graph, ExecutorOptions options);
  ~Executor();

  // `inputs` in the order of graph().inputs. Outputs in the order of
  // graph().outputs, in freshly allocated tensors.
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs);

  // Lets the worker threads of the backends that ran last sleep instead of
  // spinning (Backend::Rest), for a caller that expects a pause; the next
  // run wakes them. Runs do the same for backends they stop using.
  void Rest();

  // Builds (or finds) the plan for these inputs without running it.
  absl::StatusOr<PlanSummary> Prepare(absl::Span<const Tensor> inputs);

  const Graph& graph() const { return graph_; }
  ExecutorStats stats() const;

 private:
  Executor(Graph graph, ExecutorOptions options);
  absl::Status CheckInputs(absl::Span<const Tensor> inputs) const;
  absl::StatusOr<std::shared_ptr<Plan>> GetPlan(absl::Span<const Tensor> inputs);
  absl::StatusOr<std::shared_ptr<Plan>> BuildPlan(absl::Span<const Tensor> inputs);
  absl::StatusOr<std::vector<Tensor>> Execute(Plan& plan, absl::Span<const Tensor> inputs,
                                              bool profile = false);
  // Rests the backends of the latest run that `next` does not use, and
  // records `next` as the latest run's.
  void SwitchBackends(const std::vector<Backend*>& next);

  const Graph graph_;
  const ExecutorOptions options_;
  std::vector<bool> input_in_key_;  // inputs whose values shape inference needs

  absl::Mutex mu_;
  absl::flat_hash_map<std::vector<int64_t>, std::shared_ptr<Plan>> plans_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<int64_t>> plan_order_ ABSL_GUARDED_BY(mu_);
  absl::Mutex backends_mu_;
  std::vector<Backend*> latest_backends_ ABSL_GUARDED_BY(backends_mu_);

  std::atomic<int64_t> plans_built_{0};
  std::atomic<int64_t> kernels_compiled_{0};
  std::atomic<int64_t> arenas_allocated_{0};
  std::atomic<int64_t> runs_{0};
};

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_EXECUTOR_H_
