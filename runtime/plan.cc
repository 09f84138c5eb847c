#include "runtime/plan.h"

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "runtime/reference/op_registry.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

using Kind = Plan::Slot::Kind;

constexpr int64_t kArenaAlignment = 64;

int64_t AlignUp(int64_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

// Ops whose output is their first input under another shape: they run as
// views of the input's memory, without a kernel.
bool IsViewOp(const Node& node) {
  static const absl::flat_hash_set<std::string> kViews = {"Reshape", "Flatten", "Squeeze",
                                                          "Unsqueeze", "Identity", "Dropout"};
  if (!node.domain.empty() || !kViews.contains(node.op_type)) return false;
  return node.outputs.size() == 1 || (node.outputs.size() == 2 && node.outputs[1].empty());
}

class PlanBuilder {
 public:
  explicit PlanBuilder(const PlanInputs& in) : in_(in), plan_(std::make_shared<Plan>()) {}

  absl::StatusOr<std::shared_ptr<Plan>> Build() {
    // Every value may get a row-major twin: reserve both up front, since
    // descs and kernels keep pointers to constants held in slots.
    size_t values = in_.graph.initializers.size() + in_.graph.inputs.size();
    for (const Node& node : in_.graph.nodes) values += node.outputs.size();
    plan_->slots.resize(2 * values + in_.graph.outputs.size());

    for (const auto& [name, tensor] : in_.graph.initializers) SetConstant(Id(name), tensor);
    for (size_t i = 0; i < in_.graph.inputs.size(); ++i) {
      const int id = Id(in_.graph.inputs[i].name);
      const Tensor& t = in_.inputs[i];
      if (in_.input_in_key[i]) {
        SetConstant(id, t.Clone());
        continue;
      }
      Plan::Slot& slot = plan_->slots[id];
      slot.kind = Kind::kInput;
      slot.desc = TensorDesc{t.dtype(), t.shape()};
      slot.input = static_cast<int>(i);
    }
    for (const Node& node : in_.graph.nodes) RETURN_IF_ERROR(AddNode(node));
    for (const ValueInfo& out : in_.graph.outputs) {
      ASSIGN_OR_RETURN(int id, RowMajor(Id(out.name)));
      plan_->outputs.push_back(id);
    }
    for (const Plan::Step& step : plan_->steps) {
      auto& used = plan_->backends;
      if (std::find(used.begin(), used.end(), step.backend) == used.end()) used.push_back(step.backend);
    }
    PlanMemory();
    BindInputs();
    return plan_;
  }

 private:
  int Id(const std::string& name) {
    auto [it, inserted] = ids_.emplace(name, next_slot_);
    if (inserted) ++next_slot_;
    return it->second;
  }

  void SetConstant(int id, Tensor value) {
    Plan::Slot& slot = plan_->slots[id];
    slot.kind = Kind::kConstant;
    slot.desc = TensorDesc{value.dtype(), value.shape(), &slot.constant};
    slot.constant = std::move(value);
  }

  absl::Status CheckSize(const Node& node, size_t k, const TensorDesc& d) const {
    absl::StatusOr<int64_t> n = NumElements(d.shape);
    if (!n.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(node.Describe(), ": output ", k, ": ", n.status().message()));
    }
    if (!IsSupportedDataType(d.dtype) ||
        *n > in_.max_tensor_bytes / static_cast<int64_t>(DataTypeSize(d.dtype))) {
      return absl::ResourceExhaustedError(absl::StrCat(
          node.Describe(), ": output ", k, " of shape ", ShapeToString(d.shape), " and type ",
          DataTypeName(d.dtype), " exceeds the tensor size limit of ", in_.max_tensor_bytes,
          " bytes"));
    }
    return absl::OkStatus();
  }

  absl::Status AddNode(const Node& node) {
    const reference::OpDef* op = reference::FindOp(node);
    std::vector<int> in_ids;
    std::vector<TensorDesc> in_descs;
    bool all_constant = true;
    for (const std::string& name : node.inputs) {
      const int id = name.empty() ? -1 : Id(name);
      in_ids.push_back(id);
      in_descs.push_back(id < 0 ? TensorDesc{} : plan_->slots[id].desc);
      if (id >= 0 && in_descs.back().constant == nullptr) all_constant = false;
    }
    std::vector<TensorDesc> out_descs(node.outputs.size());
    reference::InferContext infer{node, in_.graph.opset, in_descs, out_descs};
    RETURN_IF_ERROR(op->infer(infer));
    std::vector<int> out_ids;
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      out_ids.push_back(node.outputs[k].empty() ? -1 : Id(node.outputs[k]));
      if (out_ids.back() >= 0) RETURN_IF_ERROR(CheckSize(node, k, out_descs[k]));
    }
    if (all_constant || op->shape_only) return Fold(node, in_descs, out_ids);

    if (IsViewOp(node)) {
      ASSIGN_OR_RETURN(int source, RowMajor(in_ids[0]));
      Plan::Slot& slot = plan_->slots[out_ids[0]];
      slot.kind = Kind::kAlias;
      slot.alias = source;
      slot.desc = TensorDesc{out_descs[0].dtype, out_descs[0].shape};
      return absl::OkStatus();
    }
    return CompileStep(node, std::move(in_ids), std::move(in_descs), std::move(out_descs), out_ids);
  }

  // Computes a node whose inputs are all known now, once, with the reference
  // implementation.
  absl::Status Fold(const Node& node, const std::vector<TensorDesc>& in_descs,
                    const std::vector<int>& out_ids) {
    std::vector<Tensor> inputs;
    for (const TensorDesc& d : in_descs) {
      if (!d.defined()) {
        inputs.emplace_back();
      } else if (d.constant != nullptr) {
        inputs.push_back(*d.constant);
      } else {  // shape-only ops read just the shape
        inputs.push_back(Tensor::View(d.dtype, d.shape, nullptr));
      }
    }
    ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                     reference::Evaluate(node, in_.graph.opset, inputs, in_.max_tensor_bytes));
    for (size_t k = 0; k < out_ids.size(); ++k) {
      if (out_ids[k] >= 0) SetConstant(out_ids[k], std::move(outputs[k]));
    }
    ++plan_->folded_nodes;
    return absl::OkStatus();
  }

  // The first backend that claims the node compiles it. Inputs in a layout
  // of another backend are handed over in row-major form.
  absl::Status CompileStep(const Node& node, std::vector<int> in_ids,
                           std::vector<TensorDesc> in_descs, std::vector<TensorDesc> out_descs,
                           const std::vector<int>& out_ids) {
    for (Backend* backend : in_.backends) {
      std::vector<TensorDesc> request_in = in_descs;
      std::vector<size_t> converted;
      for (size_t i = 0; i < request_in.size(); ++i) {
        if (request_in[i].layout != nullptr && request_in[i].layout->owner() != backend) {
          request_in[i].layout = nullptr;
          request_in[i].bytes = 0;
          converted.push_back(i);
        }
      }
      std::vector<TensorDesc> request_out = out_descs;
      CompileRequest request{node, in_.graph.opset, request_in, absl::MakeSpan(request_out),
                             in_.num_threads, backend == in_.backends[0] ? in_.variant : 0,
                             in_.measure, in_.choices,
                             backend == in_.backends[0] ? &plan_->variant_sensitive : nullptr};
      ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, backend->Compile(request));
      if (kernel == nullptr) continue;
      ++*in_.kernels_compiled;
      for (size_t i : converted) {
        ASSIGN_OR_RETURN(in_ids[i], RowMajor(in_ids[i]));
      }
      for (size_t k = 0; k < out_ids.size(); ++k) {
        if (out_ids[k] < 0) continue;
        Plan::Slot& slot = plan_->slots[out_ids[k]];
        slot.kind = Kind::kArena;
        slot.desc = request_out[k];
        slot.desc.constant = nullptr;
      }
      Plan::Step step;
      step.node = &node;
      step.kernel = std::move(kernel);
      step.backend = backend;
      step.inputs = std::move(in_ids);
      step.outputs = out_ids;
      plan_->steps.push_back(std::move(step));
      return absl::OkStatus();
    }
    return absl::UnimplementedError(absl::StrCat("no backend runs ", node.Describe()));
  }

  // A slot holding `id`'s value in row-major form: `id` itself, or a twin
  // filled by a conversion step from the owning backend.
  absl::StatusOr<int> RowMajor(int id) {
    const TensorDesc& desc = plan_->slots[id].desc;
    if (desc.layout == nullptr) return id;
    if (auto it = row_major_.find(id); it != row_major_.end()) return it->second;
    Backend* owner = desc.layout->owner();
    ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, owner->CompileToRowMajor(desc));
    ++*in_.kernels_compiled;
    const int twin = next_slot_++;
    Plan::Slot& slot = plan_->slots[twin];
    slot.kind = Kind::kArena;
    slot.desc = TensorDesc{desc.dtype, desc.shape};
    Plan::Step step;
    step.kernel = std::move(kernel);
    step.backend = owner;
    step.inputs = {id};
    step.outputs = {twin};
    plan_->steps.push_back(std::move(step));
    row_major_[id] = twin;
    return twin;
  }

  // Packs arena slots by liveness: largest first, each at the lowest offset
  // not used by a slot alive at the same time. Scratch follows the arena.
  void PlanMemory() {
    std::vector<int> first, last;
    Liveness(first, last);
    // Outputs that take over the memory of an input read for the last time.
    bool aliased = false;
    for (int s = 0; s < static_cast<int>(plan_->steps.size()); ++s) {
      const Plan::Step& step = plan_->steps[s];
      const int i = step.kernel->inplace_input();
      if (i < 0 || step.inputs[i] < 0 || step.outputs.empty() || step.outputs[0] < 0) continue;
      const int root = plan_->Root(step.inputs[i]);
      Plan::Slot& out = plan_->slots[step.outputs[0]];
      if (plan_->slots[root].kind != Kind::kArena || last[root] != s ||
          SlotBytes(plan_->slots[root]) != SlotBytes(out)) {
        continue;
      }
      out.kind = Kind::kAlias;
      out.alias = root;
      aliased = true;
    }
    if (aliased) Liveness(first, last);
    const size_t n = plan_->slots.size();

    std::vector<int> order;
    for (size_t id = 0; id < n; ++id) {
      Plan::Slot& slot = plan_->slots[id];
      if (slot.kind != Kind::kArena) continue;
      slot.bytes = SlotBytes(slot);
      order.push_back(static_cast<int>(id));
    }
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return plan_->slots[a].bytes > plan_->slots[b].bytes;
    });
    std::vector<int> placed;
    for (int id : order) {
      Plan::Slot& slot = plan_->slots[id];
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (int other : placed) {
        if (first[other] <= last[id] && first[id] <= last[other]) {
          const Plan::Slot& o = plan_->slots[other];
          busy.emplace_back(o.offset, o.offset + o.bytes);
        }
      }
      std::sort(busy.begin(), busy.end());
      int64_t offset = 0;
      for (const auto& [begin, end] : busy) {
        if (offset + slot.bytes <= begin) break;
        offset = std::max(offset, end);
      }
      slot.offset = offset;
      plan_->arena_bytes = std::max(plan_->arena_bytes, offset + slot.bytes);
      placed.push_back(id);
    }
    int64_t scratch = 0;
    for (const Plan::Step& step : plan_->steps) {
      scratch = std::max<int64_t>(scratch, AlignUp(step.kernel->scratch_bytes()));
    }
    plan_->scratch_offset = plan_->arena_bytes;
    plan_->arena_bytes += scratch;
  }

  static int64_t SlotBytes(const Plan::Slot& slot) {
    const TensorDesc& d = slot.desc;
    return AlignUp(d.bytes > 0 ? d.bytes : NumElementsUnchecked(d.shape) * DataTypeSize(d.dtype));
  }

  // For every root slot: the step producing it and the last step reading it
  // (graph outputs are read after the last step).
  void Liveness(std::vector<int>& first, std::vector<int>& last) const {
    const int num_steps = static_cast<int>(plan_->steps.size());
    first.assign(plan_->slots.size(), -1);
    last.assign(plan_->slots.size(), -1);
    for (int s = 0; s < num_steps; ++s) {
      for (int id : plan_->steps[s].outputs) {
        if (id >= 0 && first[plan_->Root(id)] < 0) first[plan_->Root(id)] = s;
        if (id >= 0) last[plan_->Root(id)] = std::max(last[plan_->Root(id)], s);
      }
      for (int id : plan_->steps[s].inputs) {
        if (id >= 0) last[plan_->Root(id)] = std::max(last[plan_->Root(id)], s);
      }
    }
    for (int id : plan_->outputs) last[plan_->Root(id)] = num_steps;
  }

  void BindInputs() {
    for (size_t s = 0; s < plan_->steps.size(); ++s) {
      const auto& ins = plan_->steps[s].inputs;
      for (size_t p = 0; p < ins.size(); ++p) {
        if (ins[p] < 0) continue;
        const Plan::Slot& root = plan_->slots[plan_->Root(ins[p])];
        if (root.kind == Kind::kInput) {
          plan_->input_bindings.push_back({static_cast<int>(s), static_cast<int>(p), root.input});
        }
      }
    }
    for (int id : plan_->outputs) {
      const Plan::Slot& root = plan_->slots[plan_->Root(id)];
      if (root.kind == Kind::kInput) plan_->input_bindings.push_back({-1, id, root.input});
    }
  }

  const PlanInputs& in_;
  std::shared_ptr<Plan> plan_;
  absl::flat_hash_map<std::string, int> ids_;
  int next_slot_ = 0;
  absl::flat_hash_map<int, int> row_major_;
};

}  // namespace

int Plan::Root(int slot) const {
  while (slots[slot].kind == Slot::Kind::kAlias) slot = slots[slot].alias;
  return slot;
}

std::unique_ptr<Plan::Context> Plan::NewContext() const {
  auto context = std::make_unique<Context>();
  context->arena.reset(std::aligned_alloc(kArenaAlignment, std::max<int64_t>(arena_bytes, 64)));
  char* base = static_cast<char*>(context->arena.get());
  context->slots.resize(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const TensorDesc& d = slots[i].desc;
    const Slot& root = slots[Root(static_cast<int>(i))];
    switch (root.kind) {
      case Kind::kConstant:
        context->slots[i] = root.constant.Reshaped(d.shape);
        break;
      case Kind::kArena:
        context->slots[i] = Tensor::View(d.dtype, d.shape, base + root.offset);
        break;
      case Kind::kInput:
        context->slots[i] = Tensor::View(d.dtype, d.shape, nullptr);
        break;
      default:
        break;
    }
  }
  auto gather = [&](const std::vector<int>& ids) {
    std::vector<Tensor> tensors;
    for (int id : ids) tensors.push_back(id < 0 ? Tensor() : context->slots[id]);
    return tensors;
  };
  for (const Step& step : steps) {
    context->inputs.push_back(gather(step.inputs));
    context->outputs.push_back(gather(step.outputs));
  }
  return context;
}

absl::StatusOr<std::shared_ptr<Plan>> BuildPlan(const PlanInputs& in) {
  return PlanBuilder(in).Build();
}

}  // namespace slimserve::runtime
