#include "runtime/executor.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/reference/op_registry.h"
#include "runtime/reference/reference_backend.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

constexpr int64_t kArenaAlignment = 64;
// Inputs whose values decide shapes must be small: they become part of the plan key.
constexpr int64_t kMaxKeyInputElements = 4096;

int64_t AlignUp(int64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// Ops whose output is their first input under another shape: they run as
// views of the input's memory, without a kernel.
bool IsViewOp(const Node& node) {
  static const absl::flat_hash_set<std::string> kViews = {"Reshape", "Flatten", "Squeeze",
                                                          "Unsqueeze", "Identity", "Dropout"};
  if (!node.domain.empty() || !kViews.contains(node.op_type)) return false;
  return node.outputs.size() == 1 || (node.outputs.size() == 2 && node.outputs[1].empty());
}

reference::ReferenceBackend& TheReferenceBackend() {
  static auto* backend = new reference::ReferenceBackend;
  return *backend;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

// One specialization of the graph for one set of input shapes (and the values
// of shape-deciding inputs). Immutable after BuildPlan, except for its pool of
// execution contexts.
class Plan {
 public:
  struct Slot {
    enum class Kind { kUnset, kConstant, kInput, kArena, kAlias };
    Kind kind = Kind::kUnset;
    DataType dtype = DataType::kUndefined;
    Shape shape;
    Tensor constant;     // kConstant
    int input = -1;      // kInput: index into the graph inputs
    int64_t offset = 0;  // kArena
    int64_t bytes = 0;   // kArena
    int alias = -1;      // kAlias: the slot whose memory this one views
  };
  struct Step {
    const Node* node = nullptr;
    std::unique_ptr<Kernel> kernel;
    std::string backend;
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
  // A step input or slot whose memory is a graph input, rebound on every run.
  struct InputBinding {
    int step;  // -1: binds `slots[position]` of the context
    int position;
    int input;
  };

  std::vector<Slot> slots;
  std::vector<Step> steps;
  std::vector<int> outputs;
  std::vector<InputBinding> input_bindings;
  int64_t arena_bytes = 0;
  int64_t scratch_offset = 0;
  int64_t folded_nodes = 0;

  int Root(int slot) const {
    while (slots[slot].kind == Slot::Kind::kAlias) slot = slots[slot].alias;
    return slot;
  }

  std::unique_ptr<Context> NewContext() const;

  absl::Mutex mu;
  std::vector<std::unique_ptr<Context>> pool ABSL_GUARDED_BY(mu);
};

std::unique_ptr<Plan::Context> Plan::NewContext() const {
  auto context = std::make_unique<Context>();
  context->arena.reset(std::aligned_alloc(kArenaAlignment, std::max<int64_t>(arena_bytes, 64)));
  char* base = static_cast<char*>(context->arena.get());
  context->slots.resize(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    const Slot& root = slots[Root(static_cast<int>(i))];
    switch (root.kind) {
      case Slot::Kind::kConstant:
        context->slots[i] = root.constant.Reshaped(slot.shape);
        break;
      case Slot::Kind::kArena:
        context->slots[i] = Tensor::View(slot.dtype, slot.shape, base + root.offset);
        break;
      case Slot::Kind::kInput:
        context->slots[i] = Tensor::View(slot.dtype, slot.shape, nullptr);
        break;
      default:
        break;
    }
  }
  for (const Step& step : steps) {
    auto gather = [&](const std::vector<int>& ids) {
      std::vector<Tensor> tensors;
      for (int id : ids) tensors.push_back(id < 0 ? Tensor() : context->slots[id]);
      return tensors;
    };
    context->inputs.push_back(gather(step.inputs));
    context->outputs.push_back(gather(step.outputs));
  }
  return context;
}

Executor::Executor(Graph graph, ExecutorOptions options)
    : graph_(std::move(graph)), options_(std::move(options)) {}

Executor::~Executor() = default;

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(Graph graph, ExecutorOptions options) {
  RETURN_IF_ERROR(graph.Validate());
  std::vector<std::string> unsupported;
  std::string first;
  for (const Node& node : graph.nodes) {
    if (node.domain.empty() && reference::FindOp(node.op_type) != nullptr) continue;
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
    const reference::OpDef* op = reference::FindOp(it->op_type);
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
  using Kind = Plan::Slot::Kind;
  auto plan = std::make_shared<Plan>();
  absl::flat_hash_map<std::string, int> ids;
  auto id_of = [&](const std::string& name) {
    auto [it, inserted] = ids.emplace(name, static_cast<int>(ids.size()));
    return it->second;
  };
  // Reserve every slot up front: descs point into `slots`.
  size_t num_values = graph_.initializers.size() + graph_.inputs.size();
  for (const Node& node : graph_.nodes) num_values += node.outputs.size();
  plan->slots.resize(num_values);
  std::vector<TensorDesc> descs(num_values);

  auto set_constant = [&](int id, Tensor value) {
    Plan::Slot& slot = plan->slots[id];
    slot.kind = Kind::kConstant;
    slot.dtype = value.dtype();
    slot.shape = value.shape();
    slot.constant = std::move(value);
    descs[id] = TensorDesc{slot.dtype, slot.shape, &slot.constant};
  };
  for (const auto& [name, tensor] : graph_.initializers) set_constant(id_of(name), tensor);
  for (size_t i = 0; i < graph_.inputs.size(); ++i) {
    const int id = id_of(graph_.inputs[i].name);
    if (input_in_key_[i]) {
      set_constant(id, inputs[i].Clone());
      continue;
    }
    Plan::Slot& slot = plan->slots[id];
    slot.kind = Kind::kInput;
    slot.dtype = inputs[i].dtype();
    slot.shape = inputs[i].shape();
    slot.input = static_cast<int>(i);
    descs[id] = TensorDesc{slot.dtype, slot.shape, nullptr};
  }

  std::vector<Backend*> backends = options_.backends;
  backends.push_back(&TheReferenceBackend());

  for (const Node& node : graph_.nodes) {
    const reference::OpDef* op = reference::FindOp(node.op_type);
    std::vector<int> in_ids, out_ids;
    std::vector<TensorDesc> in_descs;
    bool all_constant = true;
    for (const std::string& name : node.inputs) {
      const int id = name.empty() ? -1 : id_of(name);
      in_ids.push_back(id);
      in_descs.push_back(id < 0 ? TensorDesc{} : descs[id]);
      if (id >= 0 && descs[id].constant == nullptr) all_constant = false;
    }
    std::vector<TensorDesc> out_descs(node.outputs.size());
    reference::InferContext infer{node, graph_.opset, in_descs, out_descs};
    RETURN_IF_ERROR(op->infer(infer));
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      out_ids.push_back(node.outputs[k].empty() ? -1 : id_of(node.outputs[k]));
      if (out_ids.back() < 0) continue;
      const TensorDesc& d = out_descs[k];
      absl::StatusOr<int64_t> n = NumElements(d.shape);
      if (!n.ok()) return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": output ", k, ": ", n.status().message()));
      if (!IsSupportedDataType(d.dtype) ||
          *n > options_.max_tensor_bytes / static_cast<int64_t>(DataTypeSize(d.dtype))) {
        return absl::ResourceExhaustedError(absl::StrCat(
            node.Describe(), ": output ", k, " of shape ", ShapeToString(d.shape), " and type ",
            DataTypeName(d.dtype), " exceeds the tensor size limit of ", options_.max_tensor_bytes,
            " bytes"));
      }
    }

    if (all_constant || op->shape_only) {
      // Fold: compute now, once, with the reference implementation.
      std::vector<Tensor> in_tensors, out_tensors;
      for (int id : in_ids) {
        if (id < 0) {
          in_tensors.emplace_back();
        } else if (descs[id].constant != nullptr) {
          in_tensors.push_back(*descs[id].constant);
        } else {
          in_tensors.push_back(Tensor::View(descs[id].dtype, descs[id].shape, nullptr));
        }
      }
      for (const TensorDesc& d : out_descs) {
        if (!d.defined()) {
          out_tensors.emplace_back();
          continue;
        }
        ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(d.dtype, d.shape, options_.max_tensor_bytes));
        out_tensors.push_back(std::move(t));
      }
      reference::ComputeContext compute{node, graph_.opset, in_tensors, absl::MakeSpan(out_tensors),
                                        options_.num_threads};
      RETURN_IF_ERROR(op->compute(compute));
      for (size_t k = 0; k < out_ids.size(); ++k) {
        if (out_ids[k] >= 0) set_constant(out_ids[k], std::move(out_tensors[k]));
      }
      ++plan->folded_nodes;
      continue;
    }

    for (size_t k = 0; k < out_ids.size(); ++k) {
      if (out_ids[k] < 0) continue;
      Plan::Slot& slot = plan->slots[out_ids[k]];
      slot.dtype = out_descs[k].dtype;
      slot.shape = out_descs[k].shape;
      descs[out_ids[k]] = TensorDesc{slot.dtype, slot.shape, nullptr};
    }
    if (IsViewOp(node)) {
      Plan::Slot& slot = plan->slots[out_ids[0]];
      slot.kind = Kind::kAlias;
      slot.alias = in_ids[0];
      continue;
    }

    Plan::Step step;
    step.node = &node;
    step.inputs = in_ids;
    step.outputs = out_ids;
    CompileRequest request{node, graph_.opset, in_descs, out_descs, options_.num_threads};
    for (Backend* backend : backends) {
      ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, backend->Compile(request));
      if (kernel == nullptr) continue;
      ++kernels_compiled_;
      step.kernel = std::move(kernel);
      step.backend = std::string(backend->name());
      break;
    }
    if (step.kernel == nullptr) {
      return absl::UnimplementedError(absl::StrCat("no backend runs ", node.Describe()));
    }
    for (int id : out_ids) {
      if (id >= 0) plan->slots[id].kind = Kind::kArena;
    }
    plan->steps.push_back(std::move(step));
  }

  // Liveness of every arena slot: from its producing step to its last reader.
  const int num_steps = static_cast<int>(plan->steps.size());
  std::vector<int> first(num_values, -1), last(num_values, -1);
  for (int s = 0; s < num_steps; ++s) {
    for (int id : plan->steps[s].outputs) {
      if (id >= 0) first[id] = last[id] = s;
    }
    for (int id : plan->steps[s].inputs) {
      if (id >= 0) last[plan->Root(id)] = std::max(last[plan->Root(id)], s);
    }
  }
  for (const ValueInfo& out : graph_.outputs) {
    const int id = id_of(out.name);
    plan->outputs.push_back(id);
    last[plan->Root(id)] = num_steps;
  }
  // Greedy placement, largest first, at the lowest offset free during its lifetime.
  std::vector<int> order;
  for (size_t id = 0; id < num_values; ++id) {
    Plan::Slot& slot = plan->slots[id];
    if (slot.kind != Kind::kArena) continue;
    slot.bytes = AlignUp(NumElementsUnchecked(slot.shape) * DataTypeSize(slot.dtype));
    order.push_back(static_cast<int>(id));
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return plan->slots[a].bytes > plan->slots[b].bytes; });
  std::vector<int> placed;
  for (int id : order) {
    Plan::Slot& slot = plan->slots[id];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int other : placed) {
      if (first[other] <= last[id] && first[id] <= last[other]) {
        busy.emplace_back(plan->slots[other].offset, plan->slots[other].offset + plan->slots[other].bytes);
      }
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + slot.bytes <= begin) break;
      offset = std::max(offset, end);
    }
    slot.offset = offset;
    plan->arena_bytes = std::max(plan->arena_bytes, offset + slot.bytes);
    placed.push_back(id);
  }
  int64_t scratch = 0;
  for (const Plan::Step& step : plan->steps) {
    scratch = std::max<int64_t>(scratch, AlignUp(step.kernel->scratch_bytes()));
  }
  plan->scratch_offset = plan->arena_bytes;
  plan->arena_bytes += scratch;

  for (int s = 0; s < num_steps; ++s) {
    const auto& ins = plan->steps[s].inputs;
    for (size_t p = 0; p < ins.size(); ++p) {
      if (ins[p] >= 0 && plan->slots[plan->Root(ins[p])].kind == Kind::kInput) {
        plan->input_bindings.push_back({s, static_cast<int>(p), plan->slots[plan->Root(ins[p])].input});
      }
    }
  }
  for (int id : plan->outputs) {
    if (plan->slots[plan->Root(id)].kind == Kind::kInput) {
      plan->input_bindings.push_back({-1, id, plan->slots[plan->Root(id)].input});
    }
  }
  ++plans_built_;
  return plan;
}

absl::StatusOr<PlanSummary> Executor::Prepare(absl::Span<const Tensor> inputs) {
  RETURN_IF_ERROR(CheckInputs(inputs));
  ASSIGN_OR_RETURN(std::shared_ptr<Plan> plan, GetPlan(inputs));
  PlanSummary summary;
  for (const Plan::Step& step : plan->steps) {
    summary.nodes.push_back({step.node->name, step.node->op_type, step.backend});
  }
  summary.folded_nodes = plan->folded_nodes;
  summary.arena_bytes = plan->arena_bytes;
  return summary;
}

absl::StatusOr<std::vector<Tensor>> Executor::Run(absl::Span<const Tensor> inputs) {
  RETURN_IF_ERROR(CheckInputs(inputs));
  ASSIGN_OR_RETURN(std::shared_ptr<Plan> plan, GetPlan(inputs));
  ++runs_;
  omp_set_num_threads(options_.num_threads);

  std::unique_ptr<Plan::Context> context;
  {
    absl::MutexLock lock(&plan->mu);
    if (!plan->pool.empty()) {
      context = std::move(plan->pool.back());
      plan->pool.pop_back();
    }
  }
  if (context == nullptr) {
    context = plan->NewContext();
    ++arenas_allocated_;
  }
  for (const Plan::InputBinding& b : plan->input_bindings) {
    void* data = const_cast<void*>(inputs[b.input].raw_data());
    if (b.step < 0) {
      context->slots[b.position].Rebind(data);
    } else {
      context->inputs[b.step][b.position].Rebind(data);
    }
  }
  void* scratch = static_cast<char*>(context->arena.get()) + plan->scratch_offset;
  absl::Status status;
  for (size_t s = 0; s < plan->steps.size() && status.ok(); ++s) {
    KernelArgs args{context->inputs[s], absl::MakeSpan(context->outputs[s]), scratch};
    status = plan->steps[s].kernel->Run(args);
  }
  std::vector<Tensor> outputs;
  for (size_t k = 0; k < plan->outputs.size() && status.ok(); ++k) {
    const Tensor& src = context->slots[plan->outputs[k]];
    absl::StatusOr<Tensor> out = Tensor::Allocate(src.dtype(), src.shape());
    if (!out.ok()) {
      status = out.status();
      break;
    }
    if (src.byte_size() > 0) std::memcpy(out->raw_data(), src.raw_data(), src.byte_size());
    outputs.push_back(*std::move(out));
  }
  {
    absl::MutexLock lock(&plan->mu);
    plan->pool.push_back(std::move(context));
  }
  if (!status.ok()) return status;
  return outputs;
}

ExecutorStats Executor::stats() const {
  return ExecutorStats{plans_built_.load(), kernels_compiled_.load(), arenas_allocated_.load(),
                       runs_.load()};
}

}  // namespace slimserve::runtime
