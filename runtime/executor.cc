#include "runtime/executor.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/plan.h"
#include "runtime/reference/op_registry.h"
#include "runtime/reference/reference_backend.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

// Inputs whose values decide shapes must be small: they become part of the plan key.
constexpr int64_t kMaxKeyInputElements = 4096;
// Choosing among candidate plans: rounds over all of them, and timed runs of
// each candidate per round (after one untimed run): at least 2, and for
// small plans as many as fit in 2 ms (at most 50).
constexpr int kTimingRounds = 2;
constexpr int kTimedRunsPerRound = 2;
constexpr int kMaxTimedRunsPerRound = 50;
constexpr double kRoundMs = 2.0;

reference::ReferenceBackend& TheReferenceBackend() {
  static auto* backend = new reference::ReferenceBackend;
  return *backend;
}

int ReferenceSteps(const Plan& plan) {
  return static_cast<int>(std::count_if(plan.steps.begin(), plan.steps.end(),
                                        [](const Plan::Step& s) { return s.backend == &TheReferenceBackend(); }));
}

}  // namespace

Executor::Executor(Graph graph, ExecutorOptions options)
    : graph_(std::move(graph)), options_(std::move(options)) {}

Executor::~Executor() = default;

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(Graph graph, ExecutorOptions options) {
  RETURN_IF_ERROR(graph.Validate());
  std::vector<std::string> unsupported;
  std::string first;
  for (const Node& node : graph.nodes) {
    if (reference::FindOp(node) != nullptr) continue;
    const std::string op =
        node.domain.empty() ? node.op_type : absl::StrCat(node.domain, ".", node.op_type);
    if (first.empty()) first = absl::StrCat("operator ", op, " (", node.Describe(), ")");
    if (std::find(unsupported.begin(), unsupported.end(), op) == unsupported.end()) {
      unsupported.push_back(op);
    }
  }
  if (!unsupported.empty()) {
    return absl::UnimplementedError(absl::StrCat("unsupported ", first,
                                                 "; all unsupported operators in this model: ",
                                                 absl::StrJoin(unsupported, ", ")));
  }
  if (options.num_threads <= 0) options.num_threads = omp_get_num_procs();

  std::unique_ptr<Executor> executor(new Executor(std::move(graph), std::move(options)));
  // Values that shape inference needs, traced back to graph inputs: those
  // inputs' values become part of the plan key.
  absl::flat_hash_set<std::string> needed;
  const auto& nodes = executor->graph_.nodes;
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const reference::OpDef* op = reference::FindOp(*it);
    for (int i : op->value_inputs) {
      if (it->HasInput(i)) needed.insert(it->inputs[i]);
    }
    const bool feeds_shape = std::any_of(it->outputs.begin(), it->outputs.end(),
                                         [&](const std::string& o) { return needed.contains(o); });
    if (feeds_shape && !op->shape_only) {
      for (const std::string& in : it->inputs) {
        if (!in.empty()) needed.insert(in);
      }
    }
  }
  for (const ValueInfo& in : executor->graph_.inputs) {
    executor->input_in_key_.push_back(needed.contains(in.name));
  }
  return executor;
}

absl::Status Executor::CheckInputs(absl::Span<const Tensor> inputs) const {
  if (inputs.size() != graph_.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("model expects ", graph_.inputs.size(),
                                                   " inputs, got ", inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueInfo& info = graph_.inputs[i];
    const Tensor& t = inputs[i];
    if (!t.defined()) {
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' is missing"));
    }
    if (info.dtype != DataType::kUndefined && t.dtype() != info.dtype) {
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' has type ",
                                                     DataTypeName(t.dtype()), " but the model expects ",
                                                     DataTypeName(info.dtype)));
    }
    absl::StatusOr<int64_t> n = NumElements(t.shape());
    if (!n.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "': ", n.status().message()));
    }
    bool shape_ok = !info.has_shape || info.shape.size() == t.shape().size();
    for (size_t d = 0; shape_ok && info.has_shape && d < info.shape.size(); ++d) {
      shape_ok = info.shape[d] < 0 || info.shape[d] == t.shape()[d];
    }
    if (!shape_ok) {
      std::vector<std::string> dims;
      for (size_t d = 0; d < info.shape.size(); ++d) {
        dims.push_back(info.shape[d] >= 0 ? absl::StrCat(info.shape[d])
                                          : (info.dim_names[d].empty() ? "?" : info.dim_names[d]));
      }
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' has shape ",
                                                     ShapeToString(t.shape()),
                                                     " but the model expects [",
                                                     absl::StrJoin(dims, ","), "]"));
    }
    if (*n * static_cast<int64_t>(DataTypeSize(t.dtype())) > options_.max_tensor_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("input '", info.name, "' is larger than the tensor size limit"));
    }
    if (*n > 0 && t.raw_data() == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' has no data"));
    }
    if (input_in_key_[i] && *n > kMaxKeyInputElements) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", info.name, "' decides output shapes and may have at most ",
          kMaxKeyInputElements, " elements"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Plan>> Executor::GetPlan(absl::Span<const Tensor> inputs) {
  std::vector<int64_t> key;
  for (size_t i = 0; i < inputs.size(); ++i) {
    key.push_back(inputs[i].rank());
    key.insert(key.end(), inputs[i].shape().begin(), inputs[i].shape().end());
    if (!input_in_key_[i]) continue;
    for (int64_t k = 0; k < inputs[i].num_elements(); ++k) {
      const double v = inputs[i].GetDouble(k);
      int64_t bits = inputs[i].GetInt(k);
      if (inputs[i].dtype() == DataType::kFloat32 || inputs[i].dtype() == DataType::kFloat64) {
        std::memcpy(&bits, &v, sizeof(bits));
      }
      key.push_back(bits);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Plan> plan, BuildPlan(inputs));
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = plans_.emplace(key, plan);
  if (!inserted) return it->second;  // another thread built it first
  plan_order_.push_back(key);
  if (plan_order_.size() > options_.max_plans) {
    plans_.erase(plan_order_.front());
    plan_order_.erase(plan_order_.begin());
  }
  return plan;
}

absl::StatusOr<std::shared_ptr<Plan>> Executor::BuildPlan(absl::Span<const Tensor> inputs) {
  // The plans worth timing: each preferred backend in turn goes first (and
  // claims every node it can), once per variant it offers. With one
  // candidate there is nothing to time.
  struct Candidate {
    std::vector<Backend*> order;
    int variant;
  };
  std::vector<Candidate> candidates;
  const std::vector<Backend*>& preferred = options_.backends;
  for (size_t first = 0; first < preferred.size(); ++first) {
    std::vector<Backend*> order = preferred;
    std::rotate(order.begin(), order.begin() + first, order.end());
    for (int v = 0; v < order[0]->num_variants(); ++v) candidates.push_back({order, v});
    if (!options_.measure_kernels) break;
  }
  if (!options_.measure_kernels) candidates.resize(std::min<size_t>(candidates.size(), 1));
  if (candidates.empty()) candidates.push_back({{}, 0});

  std::vector<std::shared_ptr<Plan>> plans;
  KernelChoices choices;
  bool variants_differ = true;  // for the current order, as its variant 0 found
  for (const Candidate& candidate : candidates) {
    if (candidate.variant > 0 && !variants_differ) continue;  // the same plan again
    std::vector<Backend*> backends = candidate.order;
    backends.push_back(&TheReferenceBackend());
    ASSIGN_OR_RETURN(std::shared_ptr<Plan> plan,
                     runtime::BuildPlan(PlanInputs{graph_, inputs, input_in_key_, backends,
                                                   options_.num_threads, options_.max_tensor_bytes,
                                                   candidate.variant, options_.measure_kernels,
                                                   &kernels_compiled_, &choices}));
    plan->strategy = absl::StrCat(backends[0]->name(), " first, variant ", candidate.variant);
    if (candidate.variant == 0) variants_differ = plan->variant_sensitive;
    // A plan that leaves more nodes to the reference kernels than another is
    // not worth timing.
    if (!plans.empty() && ReferenceSteps(*plan) > ReferenceSteps(*plans.back())) continue;
    if (!plans.empty() && ReferenceSteps(*plan) < ReferenceSteps(*plans.back())) plans.clear();
    plans.push_back(std::move(plan));
  }
  // Time the candidates in rounds, so that a stall of the machine does not
  // decide between them; within a round each candidate runs several times in
  // a row and its first run is not timed, because the previous candidate's
  // threads may still be spinning (XNNPACK's pool spins for milliseconds).
  // The median decides, not the fastest run: a plan that mixes backends can
  // be fast once and slow in a row (their thread pools contend).
  std::vector<std::vector<double>> times(plans.size());
  for (int round = 0; round < kTimingRounds && plans.size() > 1; ++round) {
    for (size_t p = 0; p < plans.size(); ++p) {
      double spent_ms = 0;
      for (int r = 0; r <= kTimedRunsPerRound || (r <= kMaxTimedRunsPerRound && spent_ms < kRoundMs); ++r) {
        const auto start = std::chrono::steady_clock::now();
        RETURN_IF_ERROR(Execute(*plans[p], inputs).status());
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        spent_ms += ms;
        if (r > 0) times[p].push_back(ms);
      }
    }
  }
  for (size_t p = 0; p < plans.size() && plans.size() > 1; ++p) {
    std::sort(times[p].begin(), times[p].end());
    plans[p]->measured_ms = times[p][times[p].size() / 2];
  }
  std::shared_ptr<Plan> best = plans[0];
  for (const std::shared_ptr<Plan>& plan : plans) {
    if (plan->measured_ms < best->measured_ms) best = plan;
  }
  ++plans_built_;
  return best;
}

absl::StatusOr<PlanSummary> Executor::Prepare(absl::Span<const Tensor> inputs) {
  RETURN_IF_ERROR(CheckInputs(inputs));
  omp_set_num_threads(options_.num_threads);
  ASSIGN_OR_RETURN(std::shared_ptr<Plan> plan, GetPlan(inputs));
  PlanSummary summary;
  for (const Plan::Step& step : plan->steps) {
    if (step.node == nullptr) {
      summary.nodes.push_back({"", "(layout conversion)", std::string(step.backend->name())});
    } else {
      summary.nodes.push_back(
          {step.node->name, step.node->op_type, std::string(step.backend->name()), 0, step.kernel->description()});
    }
  }
  {
    absl::MutexLock lock(&plan->mu);
    summary.profiled_runs = plan->profiled_runs;
    for (size_t s = 0; s < plan->step_ns.size() && plan->profiled_runs > 0; ++s) {
      summary.nodes[s].mean_ms = plan->step_ns[s] * 1e-6 / plan->profiled_runs;
    }
  }
  summary.folded_nodes = plan->folded_nodes;
  summary.strategy = plan->strategy;
  summary.measured_ms = plan->measured_ms;
  summary.arena_bytes = plan->arena_bytes;
  return summary;
}

absl::StatusOr<std::vector<Tensor>> Executor::Run(absl::Span<const Tensor> inputs) {
  RETURN_IF_ERROR(CheckInputs(inputs));
  omp_set_num_threads(options_.num_threads);
  ASSIGN_OR_RETURN(std::shared_ptr<Plan> plan, GetPlan(inputs));
  ++runs_;
  return Execute(*plan, inputs, options_.profile);
}

void Executor::SwitchBackends(const std::vector<Backend*>& next) {
  std::vector<Backend*> idle;
  {
    absl::MutexLock lock(&backends_mu_);
    for (Backend* b : latest_backends_) {
      if (std::find(next.begin(), next.end(), b) == next.end()) idle.push_back(b);
    }
    latest_backends_ = next;
  }
  for (Backend* b : idle) b->Rest();
}

void Executor::Rest() { SwitchBackends({}); }

absl::StatusOr<std::vector<Tensor>> Executor::Execute(Plan& plan, absl::Span<const Tensor> inputs,
                                                      bool profile) {
  std::unique_ptr<Plan::Context> context;
  {
    absl::MutexLock lock(&plan.mu);
    if (!plan.pool.empty()) {
      context = std::move(plan.pool.back());
      plan.pool.pop_back();
    }
  }
  if (context == nullptr) {
    context = plan.NewContext();
    ++arenas_allocated_;
  }
  for (const Plan::InputBinding& b : plan.input_bindings) {
    void* data = const_cast<void*>(inputs[b.input].raw_data());
    if (b.step < 0) {
      context->slots[b.position].Rebind(data);
    } else {
      context->inputs[b.step][b.position].Rebind(data);
    }
  }
  void* scratch = static_cast<char*>(context->arena.get()) + plan.scratch_offset;
  SwitchBackends(plan.backends);
  absl::Status status;
  std::vector<int64_t> step_ns(profile ? plan.steps.size() : 0);
  for (size_t s = 0; s < plan.steps.size() && status.ok(); ++s) {
    KernelArgs args{context->inputs[s], absl::MakeSpan(context->outputs[s]), scratch};
    const auto start = std::chrono::steady_clock::now();
    status = plan.steps[s].kernel->Run(args);
    // A backend's threads left spinning would take cores from the next
    // step's threads when another backend runs it (XNNPACK's MaxPool between
    // oneDNN int8 convolutions: Fashion-MNIST 0.87 ms instead of 0.07).
    Backend* next = s + 1 < plan.steps.size() ? plan.steps[s + 1].backend : nullptr;
    if (next != nullptr && next != plan.steps[s].backend && next != &TheReferenceBackend()) {
      plan.steps[s].backend->Rest();
    }
    if (profile) step_ns[s] = std::chrono::nanoseconds(std::chrono::steady_clock::now() - start).count();
  }
  std::vector<Tensor> outputs;
  for (size_t k = 0; k < plan.outputs.size() && status.ok(); ++k) {
    const Tensor& src = context->slots[plan.outputs[k]];
    absl::StatusOr<Tensor> out = Tensor::Allocate(src.dtype(), src.shape());
    if (!out.ok()) {
      status = out.status();
      break;
    }
    if (src.byte_size() > 0) std::memcpy(out->raw_data(), src.raw_data(), src.byte_size());
    outputs.push_back(*std::move(out));
  }
  {
    absl::MutexLock lock(&plan.mu);
    plan.pool.push_back(std::move(context));
    if (profile && status.ok()) {
      plan.step_ns.resize(plan.steps.size());
      for (size_t s = 0; s < step_ns.size(); ++s) plan.step_ns[s] += step_ns[s];
      ++plan.profiled_runs;
    }
  }
  if (!status.ok()) return status;
  return outputs;
}

ExecutorStats Executor::stats() const {
  return ExecutorStats{plans_built_.load(), kernels_compiled_.load(), arenas_allocated_.load(),
                       runs_.load()};
}

}  // namespace slimserve::runtime
