#include "compression/prune.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include <oneapi/dnnl/dnnl.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "compression/evaluate.h"
#include "compression/linalg.h"
#include "compression/probe.h"
#include "runtime/passes/graph_util.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {
namespace {

using runtime::DataType;
using runtime::Graph;
using runtime::Node;
using runtime::Shape;
using runtime::Tensor;

const Tensor* FloatConstant(const Graph& graph, const Node& node, size_t input) {
  const Tensor* t = node.HasInput(input) ? runtime::FindConstant(graph, node.inputs[input]) : nullptr;
  return t != nullptr && t->dtype() == DataType::kFloat32 ? t : nullptr;
}

// Makes `value` node input `input`'s constant, under a new name when other
// nodes read the old one.
Tensor& SetConstant(Graph& graph, Node& node, size_t input, Tensor value) {
  std::string& name = node.inputs[input];
  if (graph.UseCounts()[name] > 1) name = runtime::UniqueName(graph, name + "_pruned");
  return graph.initializers[name] = std::move(value);
}

// Node input `input`'s constant, copied to change in place: tensors share
// their storage with the graph this one was copied from.
Tensor& OwnConstant(Graph& graph, Node& node, size_t input) {
  return SetConstant(graph, node, input, graph.initializers.at(node.inputs[input]).Clone());
}

// The part of `t` whose index along `axis` is in `kept` (ascending).
Tensor Take(const Tensor& t, int64_t axis, const std::vector<int64_t>& kept) {
  Shape shape = t.shape();
  const int64_t n = shape[axis];
  const int64_t outer = runtime::NumElementsUnchecked(absl::MakeSpan(shape).subspan(0, axis));
  const int64_t inner = runtime::NumElementsUnchecked(absl::MakeSpan(shape).subspan(axis + 1));
  shape[axis] = static_cast<int64_t>(kept.size());
  Tensor out = *Tensor::Allocate(t.dtype(), shape);
  const size_t row = inner * runtime::DataTypeSize(t.dtype());
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o) {
    for (size_t k = 0; k < kept.size(); ++k) {
      std::memcpy(dst + (o * kept.size() + k) * row, src + (o * n + kept[k]) * row, row);
    }
  }
  return out;
}

void Slice(Graph& graph, Node& node, size_t input, int64_t axis, const std::vector<int64_t>& kept) {
  const Tensor& t = graph.initializers.at(node.inputs[input]);
  if (t.shape()[axis] == static_cast<int64_t>(kept.size())) return;
  SetConstant(graph, node, input, Take(t, axis, kept));
}

// ---- Structured: which channels are coupled ----

// An atom is one output channel of a Conv or Gemm; a value's channels
// (dimension 1) are a list of atoms. Layers that must agree on a channel
// join their atoms' classes.
struct Atom {
  int node;          // the Conv or Gemm producing it
  int64_t channel;   // its output channel there
  bool pinned = false;
};

struct Channels {
  std::vector<int> atoms;
  int64_t rank = 4;     // of the value
  bool spread = false;  // Flatten's output: each channel spread over H*W features
};

class UnionFind {
 public:
  int Add() {
    parent_.push_back(static_cast<int>(parent_.size()));
    return parent_.back();
  }
  int Find(int a) {
    while (parent_[a] != a) a = parent_[a] = parent_[parent_[a]];
    return a;
  }
  void Join(int a, int b) { parent_[Find(a)] = Find(b); }

 private:
  std::vector<int> parent_;
};

bool PreservesChannels(const Graph& graph, const Node& node) {
  static const std::set<std::string> kUnary = {
      "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Softplus",
      "Mish", "Gelu", "Dropout", "Identity", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
      "LpPool", "Neg", "Abs", "Sqrt", "Exp", "Erf", "Cast"};
  if (kUnary.count(node.op_type)) return true;
  if (node.op_type == "Resize" || node.op_type == "Upsample") {  // scales [1, 1, ...]
    const size_t at = node.op_type == "Resize" ? 2 : 1;
    const Tensor* scales = FloatConstant(graph, node, at);
    return scales != nullptr && scales->num_elements() >= 2 && scales->data<float>()[0] == 1 &&
           scales->data<float>()[1] == 1 && !node.HasInput(3);
  }
  return false;
}

bool Elementwise(const std::string& op) {
  return op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min" || op == "PRelu";
}

// For a constant operand of an elementwise op whose output has `rank`
// dimensions and `channels` channels: the constant's axis along them, -1
// when it does not vary along them, -2 when it is not usable.
int64_t ChannelAxis(const Tensor& constant, int64_t rank, int64_t channels) {
  const int64_t axis = 1 - (rank - constant.rank());
  if (axis < 0 || constant.shape()[axis] == 1) return -1;
  return constant.shape()[axis] == channels ? axis : -2;
}

// MatMul of a value with channels (rank 4) and a 2-D constant.
bool SpatialMatMul(const Graph& graph, const Node& node, const absl::flat_hash_map<std::string, Channels>& channels) {
  for (size_t side = 0; side < 2; ++side) {
    auto it = channels.find(node.inputs[side]);
    const Tensor* other = runtime::FindConstant(graph, node.inputs[1 - side]);
    if (it != channels.end() && !it->second.spread && it->second.rank >= 4 && other != nullptr && other->rank() == 2) {
      return true;
    }
  }
  return false;
}

struct Analysis {
  std::vector<Atom> atoms;
  UnionFind classes;
  absl::flat_hash_map<std::string, Channels> channels;  // by value name
  // The layers that read coupled channels through constants: (node, input).
  std::vector<std::pair<int, size_t>> channel_constants;
};

bool IsDepthwise(const Node& node, const Tensor& w) {
  return node.GetInt("group", 1) > 1 && w.shape()[1] == 1 && w.shape()[0] == node.GetInt("group", 1);
}

// Conv with constant float weights (and bias), or Gemm with constant 2-D
// weights, not transposed A.
bool IsLayer(const Graph& graph, const Node& node) {
  if (!node.domain.empty()) return false;
  const Tensor* w = FloatConstant(graph, node, 1);
  if (w == nullptr || (node.HasInput(2) && FloatConstant(graph, node, 2) == nullptr)) return false;
  if (node.op_type == "Conv") return w->rank() >= 3;
  if (node.op_type == "Gemm") return w->rank() == 2 && node.GetInt("transA", 0) == 0;
  return false;
}

int64_t OutputChannels(const Node& node, const Tensor& w) {
  if (node.op_type == "Conv") return w.shape()[0];
  return node.GetInt("transB", 0) != 0 ? w.shape()[0] : w.shape()[1];
}

Analysis Analyze(const Graph& graph) {
  Analysis a;
  auto fresh = [&](int node, int64_t n, int64_t rank, bool pinned) {
    Channels c;
    c.rank = rank;
    for (int64_t k = 0; k < n; ++k) {
      a.atoms.push_back({node, k, pinned});
      c.atoms.push_back(a.classes.Add());
    }
    return c;
  };
  auto pin = [&](const std::string& value) {
    auto it = a.channels.find(value);
    if (it == a.channels.end()) return;
    for (int atom : it->second.atoms) a.atoms[atom].pinned = true;
  };
  auto find = [&](const std::string& value) -> const Channels* {
    auto it = a.channels.find(value);
    return it == a.channels.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    const int n = static_cast<int>(i);
    const Channels* x = node.inputs.empty() ? nullptr : find(node.inputs[0]);
    const std::string out = node.outputs.empty() ? "" : node.outputs[0];
    // Sets out's channels from a copy: inserting may move the map's entries.
    auto set = [&](Channels c) { a.channels[out] = std::move(c); };
    if (IsLayer(graph, node)) {
      const Tensor& w = *FloatConstant(graph, node, 1);
      const int64_t c = OutputChannels(node, w);
      const int64_t rank = node.op_type == "Conv" ? w.rank() : 2;
      const Tensor* bias = FloatConstant(graph, node, 2);
      const bool bias_ok = bias == nullptr || bias->num_elements() == 1 ||
                           (bias->num_elements() == c && bias->shape().back() == c);
      if (node.op_type == "Conv" && node.GetInt("group", 1) > 1) {
        if (IsDepthwise(node, w) && x != nullptr && !x->spread && static_cast<int64_t>(x->atoms.size()) == c) {
          set(*x);  // one filter per channel: the channel goes through
        } else {
          pin(node.inputs[0]);
          set(fresh(n, c, rank, true));
        }
      } else {
        // A Gemm reads features: a Flatten's (each channel spread over as
        // many as divide its inputs) or another Gemm's.
        const int64_t features = node.op_type == "Gemm" ? w.shape()[node.GetInt("transB", 0) != 0 ? 1 : 0] : 0;
        if (x != nullptr && (node.op_type == "Gemm" ? features % x->atoms.size() != 0 : x->spread)) {
          pin(node.inputs[0]);
        }
        set(fresh(n, c, rank, !bias_ok));
      }
    } else if (node.op_type == "BatchNormalization" && x != nullptr && !x->spread) {
      bool constant = true;
      for (size_t k = 1; k < 5; ++k) constant &= FloatConstant(graph, node, k) != nullptr;
      if (constant) {
        set(*x);
      } else {
        pin(node.inputs[0]);
      }
    } else if (x != nullptr && !x->spread && PreservesChannels(graph, node)) {
      set(*x);
    } else if (node.op_type == "MatMul" && node.inputs.size() == 2 && SpatialMatMul(graph, node, a.channels)) {
      // A constant 2-D matrix times the last two (spatial) dimensions of
      // the channels, on either side (an adaptive average pool, exported).
      set(a.channels.at(node.inputs[runtime::FindConstant(graph, node.inputs[0]) != nullptr ? 1 : 0]));
    } else if (node.op_type == "Flatten" && node.GetInt("axis", 1) == 1 && x != nullptr && !x->spread) {
      set(Channels{x->atoms, 2, true});
    } else if (Elementwise(node.op_type) && node.inputs.size() == 2) {
      const Channels* y = find(node.inputs[1]);
      if (x != nullptr && y != nullptr && !x->spread && !y->spread && x->atoms.size() == y->atoms.size() &&
          x->rank == y->rank) {
        for (size_t k = 0; k < x->atoms.size(); ++k) a.classes.Join(x->atoms[k], y->atoms[k]);
        set(*x);
      } else if ((x == nullptr) != (y == nullptr)) {
        const size_t mapped = x != nullptr ? 0 : 1;
        const Channels& m = *(x != nullptr ? x : y);
        const Tensor* other = runtime::FindConstant(graph, node.inputs[1 - mapped]);
        const int64_t axis = other != nullptr && !m.spread ? ChannelAxis(*other, m.rank, m.atoms.size()) : -2;
        if (axis == -2) {
          pin(node.inputs[mapped]);
        } else {
          if (axis >= 0) a.channel_constants.push_back({n, 1 - mapped});
          set(m);
        }
      } else {
        pin(node.inputs[0]);
        pin(node.inputs[1]);
      }
    } else if (node.op_type == "Concat" && node.GetInt("axis", 0) == 1) {
      Channels joined;
      joined.rank = x != nullptr ? x->rank : 4;
      bool all = true;
      for (const std::string& in : node.inputs) {
        const Channels* c = find(in);
        all &= c != nullptr && !c->spread;
        if (all) joined.atoms.insert(joined.atoms.end(), c->atoms.begin(), c->atoms.end());
      }
      if (all) {
        set(joined);
      } else {
        for (const std::string& in : node.inputs) pin(in);
      }
    } else {
      for (const std::string& in : node.inputs) pin(in);
    }
  }
  for (const auto& output : graph.outputs) pin(output.name);
  return a;
}

// Kept positions of a value's channels (features, when spread over `repeat`).
std::vector<int64_t> Kept(const Channels& c, const std::vector<bool>& removed, int64_t repeat = 1) {
  std::vector<int64_t> kept;
  for (size_t p = 0; p < c.atoms.size(); ++p) {
    if (removed[c.atoms[p]]) continue;
    for (int64_t r = 0; r < repeat; ++r) kept.push_back(static_cast<int64_t>(p) * repeat + r);
  }
  return kept;
}

// Magnitude of output channel `c` of a layer's weights.
double FilterScore(const Node& node, const Tensor& w, int64_t c, PruneCriterion criterion) {
  const bool rows = node.op_type == "Conv" || node.GetInt("transB", 0) != 0;
  const int64_t n = rows ? w.shape()[0] : w.shape()[1];
  const int64_t per = w.num_elements() / n;
  double s = 0;
  for (int64_t k = 0; k < per; ++k) {
    const float v = rows ? w.data<float>()[c * per + k] : w.data<float>()[k * n + c];
    s += criterion == PruneCriterion::kL2 ? double{v} * v : std::fabs(v);
  }
  return s;
}

absl::StatusOr<PruneReport> PruneFilters(Graph& graph, const PruneOptions& options) {
  Analysis a = Analyze(graph);
  // Scores per atom, then per class (summed; L2: root of summed squares).
  std::vector<double> atom_score(a.atoms.size(), 0);
  std::vector<bool> has_score(a.atoms.size(), options.criterion != PruneCriterion::kBnGamma);
  if (options.criterion == PruneCriterion::kBnGamma) {
    for (const Node& node : graph.nodes) {
      auto it = a.channels.find(node.inputs.empty() ? "" : node.inputs[0]);
      if (node.op_type != "BatchNormalization" || it == a.channels.end() || it->second.spread) continue;
      const Tensor* gamma = FloatConstant(graph, node, 1);
      if (gamma == nullptr) continue;
      for (size_t p = 0; p < it->second.atoms.size(); ++p) {
        atom_score[it->second.atoms[p]] = std::fabs(gamma->data<float>()[p]);
        has_score[it->second.atoms[p]] = true;
      }
    }
  } else {
    for (size_t k = 0; k < a.atoms.size(); ++k) {
      const Node& node = graph.nodes[a.atoms[k].node];
      atom_score[k] = FilterScore(node, *FloatConstant(graph, node, 1), a.atoms[k].channel, options.criterion);
    }
  }
  struct Class {
    double score = 0;
    bool removable = true;
    std::set<int> producers;  // the layers whose filters it removes: its cluster
    std::vector<int> atoms;
  };
  std::map<int, Class> classes;
  for (size_t k = 0; k < a.atoms.size(); ++k) {
    Class& c = classes[a.classes.Find(static_cast<int>(k))];
    c.score += atom_score[k];
    c.removable &= !a.atoms[k].pinned && has_score[k];
    c.producers.insert(a.atoms[k].node);
    c.atoms.push_back(static_cast<int>(k));
  }
  std::map<std::set<int>, std::vector<Class*>> clusters;
  bool any_score = false;
  for (auto& [root, c] : classes) {
    if (options.criterion == PruneCriterion::kL2) c.score = std::sqrt(c.score);
    any_score |= c.removable;
    if (c.removable) clusters[c.producers].push_back(&c);
  }
  if (options.criterion == PruneCriterion::kBnGamma && !any_score) {
    return absl::FailedPreconditionError(
        "criterion bn-gamma needs BatchNormalization after the filters it prunes, and this model has none "
        "(BatchNorm folded into Conv at export?): use criterion l1 or l2");
  }
  if (clusters.empty()) {
    return absl::FailedPreconditionError(
        "nothing to prune: the model has no Conv or Gemm output channel that could be removed (every one "
        "reaches a graph output or an op whose channels this cannot follow)");
  }
  // Which classes go: the lowest scores, per cluster or (global) across
  // clusters on scores divided by their cluster's mean; never a whole
  // cluster, and where a cluster has a multiple of 8 channels, it keeps one
  // (kernels block channels by 8 or 16: 45 of 64 ran no faster than 64).
  std::map<std::vector<Class*>*, size_t> drops;
  std::vector<std::pair<double, std::vector<Class*>*>> ranked;
  for (auto& [producers, members] : clusters) {
    std::sort(members.begin(), members.end(), [](Class* x, Class* y) { return x->score < y->score; });
    double mean = 0;
    for (Class* c : members) mean += c->score / members.size();
    for (Class* c : members) ranked.push_back({c->score / std::max(mean, 1e-30), &members});
    drops[&members] = options.global ? 0 : static_cast<size_t>(options.sparsity * members.size());
  }
  if (options.global) {
    std::sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (size_t k = 0; k < static_cast<size_t>(options.sparsity * ranked.size()); ++k) ++drops[ranked[k].second];
  }
  std::vector<bool> removed(a.atoms.size(), false);
  for (auto& [members, drop] : drops) {
    const size_t n = members->size();
    size_t keep = std::max<size_t>(1, n - std::min(drop, n));
    if (n % 8 == 0 && n >= 16) keep = (keep + 7) / 8 * 8;
    for (size_t k = 0; k + keep < n; ++k) {
      for (int atom : (*members)[k]->atoms) removed[atom] = true;
    }
  }

  // Cut every layer, BatchNormalization and per-channel constant down to
  // the channels that stay.
  PruneReport report;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    auto in = a.channels.find(node.inputs.empty() ? "" : node.inputs[0]);
    auto out = a.channels.find(node.outputs.empty() ? "" : node.outputs[0]);
    if (IsLayer(graph, node)) {
      const Tensor w = *FloatConstant(graph, node, 1);
      const int64_t before = OutputChannels(node, w);
      const std::vector<int64_t> kept_out = Kept(out->second, removed);
      bool changed = static_cast<int64_t>(kept_out.size()) != before;
      const bool gemm = node.op_type == "Gemm";
      const bool trans_b = node.GetInt("transB", 0) != 0;
      const int64_t out_axis = gemm && !trans_b ? 1 : 0;
      std::string inputs;  // "; 12 of 16 inputs" when they changed
      if (node.op_type == "Conv" && IsDepthwise(node, w)) {
        node.attributes["group"].i = static_cast<int64_t>(kept_out.size());
      } else if (in != a.channels.end() && w.shape()[gemm && !trans_b ? 0 : 1] % in->second.atoms.size() == 0) {
        const int64_t in_axis = gemm && !trans_b ? 0 : 1;
        const int64_t repeat = in->second.spread ? w.shape()[in_axis] / in->second.atoms.size() : 1;
        const std::vector<int64_t> kept_in = Kept(in->second, removed, repeat);
        if (static_cast<int64_t>(kept_in.size()) != w.shape()[in_axis]) {
          changed = true;
          inputs = absl::StrCat("; ", kept_in.size(), " of ", w.shape()[in_axis], " inputs");
        }
        Slice(graph, node, 1, in_axis, kept_in);
      }
      if (!changed) continue;
      Slice(graph, node, 1, out_axis, kept_out);
      const Tensor* bias = FloatConstant(graph, node, 2);
      if (bias != nullptr && bias->num_elements() > 1) Slice(graph, node, 2, bias->rank() - 1, kept_out);
      report.kept_outputs[node.name] = kept_out;
      report.layers.push_back(absl::StrCat(node.Describe(), ": ", kept_out.size(), " of ", before,
                                           gemm ? " outputs" : " filters", inputs));
    } else if (node.op_type == "BatchNormalization" && out != a.channels.end()) {
      const std::vector<int64_t> kept = Kept(out->second, removed);
      for (size_t k = 1; k < 5; ++k) Slice(graph, node, k, 0, kept);
    }
  }
  for (const auto& [n, input] : a.channel_constants) {
    Node& node = graph.nodes[n];
    const Channels& c = a.channels.at(node.outputs[0]);
    const Tensor& t = *runtime::FindConstant(graph, node.inputs[input]);
    Slice(graph, node, input, ChannelAxis(t, c.rank, c.atoms.size()), Kept(c, removed));
  }
  graph.value_info.clear();  // intermediate shapes changed
  RETURN_IF_ERROR(graph.Validate());
  return report;
}

// ---- Unstructured: zeros ----

// A layer's weights seen as [O][I][S] (filters, input channels, spatial
// positions); `inner_o` when laid out [I][O] instead (Gemm without transB).
struct WeightLayout {
  int64_t o, i, s;
  bool inner_o;
};

int64_t Groups(const WeightLayout& l, PruneStructure structure) {
  switch (structure) {
    case PruneStructure::kKernel: return l.o * l.i;
    case PruneStructure::kVector: return l.o * ((l.i + 3) / 4) * l.s;
    default: return l.o * l.i * l.s;
  }
}

int64_t GroupOf(const WeightLayout& l, PruneStructure structure, int64_t flat) {
  const int64_t s = flat % l.s;
  const int64_t oi = flat / l.s;
  const int64_t o = l.inner_o ? oi % l.o : oi / l.i;
  const int64_t i = l.inner_o ? oi / l.o : oi % l.i;
  switch (structure) {
    case PruneStructure::kKernel: return o * l.i + i;
    case PruneStructure::kVector: return (o * ((l.i + 3) / 4) + i / 4) * l.s + s;
    default: return (o * l.i + i) * l.s + s;
  }
}

absl::StatusOr<PruneReport> PruneWeights(Graph& graph, const PruneOptions& options) {
  if (options.criterion == PruneCriterion::kBnGamma) {
    return absl::InvalidArgumentError("criterion bn-gamma ranks filters: use it with structure=filter");
  }
  struct Layer {
    size_t node;
    WeightLayout layout;
    std::vector<float> scores;
  };
  std::vector<Layer> layers;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    const Tensor* w = FloatConstant(graph, node, 1);
    if (!node.domain.empty() || w == nullptr) continue;
    WeightLayout l{};
    if (node.op_type == "Conv" && w->rank() >= 3) {
      l = {w->shape()[0], w->shape()[1], w->num_elements() / (w->shape()[0] * w->shape()[1]), false};
    } else if ((node.op_type == "Gemm" && node.GetInt("transA", 0) == 0) || node.op_type == "MatMul") {
      if (w->rank() != 2) continue;
      const bool trans_b = node.op_type == "Gemm" && node.GetInt("transB", 0) != 0;
      l = trans_b ? WeightLayout{w->shape()[0], w->shape()[1], 1, false}
                  : WeightLayout{w->shape()[1], w->shape()[0], 1, true};
    } else {
      continue;
    }
    if (options.structure == PruneStructure::kKernel && l.s == 1) continue;  // no kernels to remove
    layers.push_back({n, l, {}});
  }
  if (layers.empty()) {
    return absl::FailedPreconditionError(
        options.structure == PruneStructure::kKernel
            ? "nothing to prune: structure=kernel needs Conv layers with kernels larger than 1x1"
            : "nothing to prune: the model has no Conv, Gemm or MatMul with constant weights");
  }
  for (Layer& layer : layers) {
    const Tensor& w = *FloatConstant(graph, graph.nodes[layer.node], 1);
    layer.scores.assign(Groups(layer.layout, options.structure), 0.0f);
    for (int64_t f = 0; f < w.num_elements(); ++f) {
      const float v = w.data<float>()[f];
      layer.scores[GroupOf(layer.layout, options.structure, f)] += options.criterion == PruneCriterion::kL2 ? v * v : std::fabs(v);
    }
  }
  // The score below which a group goes: per layer, or one for all.
  auto threshold = [&](std::vector<float> scores, double sparsity) -> float {
    const size_t drop = static_cast<size_t>(sparsity * scores.size());
    if (drop == 0) return -1;
    std::nth_element(scores.begin(), scores.begin() + (drop - 1), scores.end());
    return scores[drop - 1];
  };
  float global = -1;
  if (options.global) {
    std::vector<float> all;
    for (const Layer& layer : layers) all.insert(all.end(), layer.scores.begin(), layer.scores.end());
    global = threshold(std::move(all), options.sparsity);
  }
  PruneReport report;
  for (const Layer& layer : layers) {
    Node& node = graph.nodes[layer.node];
    const auto own = options.layer_sparsity.find(node.name);
    const float limit = options.global ? global
                                       : threshold(layer.scores, own == options.layer_sparsity.end() ? options.sparsity
                                                                                                      : own->second);
    Tensor& w = OwnConstant(graph, node, 1);
    int64_t zeros = 0;
    for (int64_t f = 0; f < w.num_elements(); ++f) {
      if (layer.scores[GroupOf(layer.layout, options.structure, f)] <= limit) w.data<float>()[f] = 0;
      zeros += w.data<float>()[f] == 0;
    }
    std::vector<int64_t> all(layer.layout.o);
    std::iota(all.begin(), all.end(), 0);
    report.kept_outputs[node.name] = all;
    report.layers.push_back(absl::StrFormat("%s: %.1f %% zeros", node.Describe(), 100.0 * zeros / w.num_elements()));
  }
  return report;
}

// A layer's weights as rows of features per output channel, whatever its
// layout (Gemm without transB keeps them in columns), with the bias in the
// layer's own terms (Gemm: alpha x w + beta c).
struct LayerWeights {
  LayerWeights(const Node& node, Tensor& w, Tensor& b)
      : w(w.data<float>()), b(b.data<float>()), channels(b.num_elements()),
        features(w.num_elements() / channels),
        rows(node.op_type == "Conv" || node.GetInt("transB", 0) != 0),
        alpha(node.op_type == "Gemm" ? node.GetFloat("alpha", 1.0f) : 1.0f),
        beta(node.op_type == "Gemm" ? node.GetFloat("beta", 1.0f) : 1.0f) {}
  float& At(int64_t c, int64_t f) { return rows ? w[c * features + f] : w[f * channels + c]; }
  float& Bias(int64_t c) { return b[c]; }

  float* w;
  float* b;
  int64_t channels, features;
  bool rows;
  float alpha, beta;
};

// Samples of a layer's inputs (as the rows its weights multiply: im2col
// patches of a Conv, rows of a Gemm) in the pruned model and of its outputs
// in the original, at every step-th output position, to solve for weights.
constexpr int64_t kMaxSolvedFeatures = 4096;
constexpr int64_t kTargetSamples = 16384;

// Features per output of a Conv (group 1, explicit pads) or Gemm that can
// be solved for, or 0.
int64_t PatchFeatures(const Node& node, const Graph& graph) {
  const Tensor& w = *FloatConstant(graph, node, 1);
  int64_t f = 0;
  if (node.op_type == "Gemm") {
    f = w.shape()[node.GetInt("transB", 0) != 0 ? 1 : 0];
  } else if (w.rank() == 4 && node.GetInt("group", 1) == 1 && node.GetString("auto_pad", "NOTSET") == "NOTSET") {
    f = w.num_elements() / w.shape()[0];
  }
  return f <= kMaxSolvedFeatures ? f : 0;
}

// Floating-point operations of solving for a layer's weights: one
// factorization per distinct set of non-zero weights (all channels share one
// when none is zero).
constexpr double kMaxSolveFlops = 3e10;
double SolveCost(LayerWeights& lw) {
  double flops = 0;
  bool full_counted = false;
  for (int64_t c = 0; c < lw.channels; ++c) {
    int64_t m = 1;
    for (int64_t f = 0; f < lw.features; ++f) m += lw.At(c, f) != 0;
    const double factor = static_cast<double>(m) * m * m / 3;
    if (m < lw.features + 1 || !full_counted) flops += factor;
    full_counted |= m == lw.features + 1;
    flops += 2.0 * m * m;
  }
  return flops;
}

class Samples {
 public:
  // Original outputs [N, C(, H, W)], batch after batch.
  void AddTargets(const Tensor& y, int64_t rows, int64_t features) {
    channels_ = y.shape()[1];
    spatial_ = y.num_elements() / (y.shape()[0] * channels_);
    if (step_ == 0) step_ = std::max<int64_t>(1, rows * spatial_ / std::max(kTargetSamples, 4 * features));
    for (int64_t n = 0; n < y.shape()[0]; ++n) {
      for (int64_t s = 0; s < spatial_; ++s, ++position_) {
        if (position_ % step_ != 0) continue;
        for (int64_t c = 0; c < channels_; ++c) targets_.push_back(y.data<float>()[(n * channels_ + c) * spatial_ + s]);
      }
    }
  }

  // The layer's inputs in the pruned model, in the same order; `w` its weights.
  void AddPatches(const Node& node, const Tensor& w, const Tensor& x) {
    if (x.rank() == 2) {  // Gemm
      features_ = x.shape()[1];
      for (int64_t n = 0; n < x.shape()[0]; ++n, ++patch_position_) {
        if (patch_position_ % step_ == 0) patches_.insert(patches_.end(), x.data<float>() + n * features_, x.data<float>() + (n + 1) * features_);
      }
      return;
    }
    const std::vector<int64_t> strides = node.GetInts("strides", {1, 1}), dilations = node.GetInts("dilations", {1, 1});
    const std::vector<int64_t> pads = node.GetInts("pads", {0, 0, 0, 0});
    const int64_t cin = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
    const int64_t kh = w.shape()[2], kw = w.shape()[3];
    const int64_t oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0] + 1;
    const int64_t ow = spatial_ / oh;
    features_ = cin * kh * kw;
    for (int64_t n = 0; n < x.shape()[0]; ++n) {
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox, ++patch_position_) {
          if (patch_position_ % step_ != 0) continue;
          for (int64_t c = 0; c < cin; ++c) {
            for (int64_t ky = 0; ky < kh; ++ky) {
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * strides[0] - pads[0] + ky * dilations[0];
                const int64_t ix = ox * strides[1] - pads[1] + kx * dilations[1];
                const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < wd;
                patches_.push_back(inside ? x.data<float>()[((n * cin + c) * h + iy) * wd + ix] : 0.0f);
              }
            }
          }
        }
      }
    }
  }

  // Weights (and bias) of the kept output channels minimizing the squared
  // error to the original's outputs, plus a small pull towards the current
  // weights (lambda, relative to the inputs' energy) so that directions the
  // samples do not see keep their values. Zero weights stay zero.
  void Solve(const std::vector<int64_t>& kept, LayerWeights& lw) const {
    if (features_ == 0 || patches_.empty()) return;
    const int64_t s = static_cast<int64_t>(patches_.size()) / features_;
    const int64_t f1 = features_ + 1;  // the bias is the weight of a constant 1
    std::vector<float> p(s * f1);
    for (int64_t i = 0; i < s; ++i) {
      std::copy(patches_.begin() + i * features_, patches_.begin() + (i + 1) * features_, p.begin() + i * f1);
      p[i * f1 + features_] = 1.0f;
    }
    std::vector<float> g(f1 * f1), pt_y(f1 * channels_);  // P^T P, P^T Y
    dnnl_sgemm('T', 'N', f1, f1, s, 1.0f, p.data(), f1, p.data(), f1, 0.0f, g.data(), f1);
    dnnl_sgemm('T', 'N', f1, channels_, s, 1.0f, p.data(), f1, targets_.data(), channels_, 0.0f, pt_y.data(), channels_);
    double trace = 0;
    for (int64_t i = 0; i < features_; ++i) trace += g[i * f1 + i];
    const double lambda = 1e-2 * trace / std::max<int64_t>(1, features_) + 1e-12;
    std::vector<double> full;  // the factored system of a channel with no zero weight, for all such
    for (int64_t c = 0; c < lw.channels; ++c) {
      std::vector<int64_t> support;  // features whose weight is not zero, and the bias
      for (int64_t f = 0; f < features_; ++f) {
        if (lw.At(c, f) != 0) support.push_back(f);
      }
      support.push_back(features_);
      const int64_t m = static_cast<int64_t>(support.size());
      std::vector<double> a, r(m);
      if (m < f1 || full.empty()) {
        a.resize(m * m);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < m; ++j) a[i * m + j] = g[support[i] * f1 + support[j]];
          a[i * m + i] += lambda;
        }
        if (!CholeskyFactor(a, m)) continue;  // not positive definite: leave the channel
        if (m == f1) full = a;
      }
      for (int64_t i = 0; i < m; ++i) {
        const double current = support[i] == features_ ? lw.Bias(c) * lw.beta / lw.alpha : lw.At(c, support[i]);
        r[i] = pt_y[support[i] * channels_ + kept[c]] / lw.alpha + lambda * current;
      }
      CholeskySolve(m == f1 ? full : a, r, m);
      for (int64_t i = 0; i + 1 < m; ++i) lw.At(c, support[i]) = static_cast<float>(r[i]);
      lw.Bias(c) = static_cast<float>(r[m - 1] * lw.alpha / lw.beta);
    }
  }

 private:
  std::vector<float> targets_, patches_;
  int64_t channels_ = 0, spatial_ = 1, step_ = 0, position_ = 0, patch_position_ = 0, features_ = 0;
};

// Per-channel mean and standard deviation of values (dimension 1).
struct ChannelStats {
  std::vector<double> sum, squares;
  double count = 0;

  void Add(const Tensor& t) {
    const int64_t c = t.shape()[1];
    const int64_t inner = t.num_elements() / (t.shape()[0] * c);
    if (sum.empty()) sum.assign(c, 0), squares.assign(c, 0);
    const float* v = t.data<float>();
    for (int64_t n = 0; n < t.shape()[0]; ++n) {
      for (int64_t k = 0; k < c; ++k) {
        double s = 0, q = 0;
        for (const float* p = v + (n * c + k) * inner; p < v + (n * c + k + 1) * inner; ++p) s += *p, q += double{*p} * *p;
        sum[k] += s;
        squares[k] += q;
      }
    }
    count += static_cast<double>(t.shape()[0] * inner);
  }
  double Mean(int64_t k) const { return sum[k] / count; }
  double Std(int64_t k) const { return std::sqrt(std::max(0.0, squares[k] / count - Mean(k) * Mean(k))); }
};

}  // namespace

absl::StatusOr<PruneReport> Prune(Graph& graph, const PruneOptions& options) {
  if (!(options.sparsity >= 0 && options.sparsity < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("sparsity must be in [0, 1), not ", options.sparsity));
  }
  // Constants reached through Identity or Constant nodes become initializers
  // (BatchNormalization stays, for its gamma).
  runtime::OptimizeOptions clean;
  clean.fold_channel_affine = false;
  clean.fuse = false;
  RETURN_IF_ERROR(runtime::Optimize(graph, clean));
  const int64_t before = CountParameters(graph).total;
  ASSIGN_OR_RETURN(PruneReport report, options.structure == PruneStructure::kFilter ? PruneFilters(graph, options)
                                                                                    : PruneWeights(graph, options));
  const Parameters after = CountParameters(graph);
  report.parameters_before = before;
  report.parameters_after = after.total;
  report.nonzero_after = after.total - after.zeros;
  return report;
}

absl::StatusOr<std::vector<LayerSensitivity>> SensitivityAnalysis(const Graph& graph, const PruneOptions& options,
                                                                   absl::Span<const std::vector<Tensor>> batches,
                                                                   int num_threads, const Progress& progress) {
  if (options.structure == PruneStructure::kFilter) {
    return absl::InvalidArgumentError("sensitivity analysis prunes weights, vectors or kernels, not filters");
  }
  // The layers: what pruning nothing visits.
  Graph all = graph;
  PruneOptions none = options;
  none.sparsity = 0;
  none.global = false;
  none.layer_sparsity.clear();
  ASSIGN_OR_RETURN(const PruneReport layers, Prune(all, none));
  // The model's own outputs, then each layer alone at each level; progress
  // is reported before every run (a server's job yields there).
  const double runs = static_cast<double>((1 + layers.kept_outputs.size() * std::size(kSensitivityLevels)) *
                                          std::max<size_t>(1, batches.size()));
  double done = 0;
  auto outputs = [&](Graph g) -> absl::StatusOr<std::vector<Tensor>> {
    ASSIGN_OR_RETURN(CompiledGraph c, Compile(std::move(g), num_threads, /*measure_kernels=*/false));
    std::vector<Tensor> first;
    for (const auto& batch : batches) {
      RETURN_IF_ERROR(Report(progress, done++ / runs));
      ASSIGN_OR_RETURN(std::vector<Tensor> out, c.executor->Run(batch));
      first.push_back(out[0].Clone());
    }
    return first;
  };
  ASSIGN_OR_RETURN(const std::vector<Tensor> reference, outputs(all));
  std::vector<LayerSensitivity> result;
  for (const auto& [name, kept] : layers.kept_outputs) {
    LayerSensitivity layer{name, 0, {}};
    for (const Node& node : all.nodes) {
      if (node.name == name) layer.weights = FloatConstant(all, node, 1)->num_elements();
    }
    for (double level : kSensitivityLevels) {
      Graph pruned = all;
      PruneOptions one = none;
      one.layer_sparsity[name] = level;
      RETURN_IF_ERROR(Prune(pruned, one).status());
      ASSIGN_OR_RETURN(const std::vector<Tensor> out, outputs(std::move(pruned)));
      OutputDifference difference;
      for (size_t b = 0; b < out.size(); ++b) difference.Add(reference[b], out[b]);
      const double sqnr = difference.SqnrDb();
      layer.sqnr_db.push_back(std::isinf(sqnr) ? 200.0 : sqnr);  // 200: unchanged
    }
    result.push_back(std::move(layer));
  }
  return result;
}

std::map<std::string, double> AllocateSparsity(const std::vector<LayerSensitivity>& layers, double sparsity) {
  const size_t levels = std::size(kSensitivityLevels);
  auto level = [](int i) { return i < 0 ? 0.0 : kSensitivityLevels[i]; };
  auto noise = [&](const LayerSensitivity& l, int i) { return i < 0 ? 0.0 : std::pow(10.0, -l.sqnr_db[i] / 10); };
  std::vector<int> at(layers.size(), -1);  // each layer's level, -1: none pruned
  double total = 0, removed = 0;
  for (const LayerSensitivity& l : layers) total += static_cast<double>(l.weights);
  while (removed < sparsity * total) {
    int best = -1;
    double best_cost = 0;
    for (size_t k = 0; k < layers.size(); ++k) {
      if (at[k] + 1 >= static_cast<int>(levels) || layers[k].weights == 0) continue;
      const double cost = (noise(layers[k], at[k] + 1) - noise(layers[k], at[k])) /
                          (layers[k].weights * (level(at[k] + 1) - level(at[k])));
      if (best < 0 || cost < best_cost) best = static_cast<int>(k), best_cost = cost;
    }
    if (best < 0) break;  // every layer at the highest level
    removed += layers[best].weights * (level(at[best] + 1) - level(at[best]));
    ++at[best];
  }
  std::map<std::string, double> shares;
  for (size_t k = 0; k < layers.size(); ++k) shares[layers[k].node] = level(at[k]);
  return shares;
}

absl::Status Recover(const Graph& original, Graph& pruned, const PruneReport& report,
                     absl::Span<const std::vector<Tensor>> batches, const RecoverOptions& options) {
  std::vector<size_t> layers;  // in pruned's order
  std::vector<std::string> original_values;
  for (size_t n = 0; n < pruned.nodes.size(); ++n) {
    const Node& node = pruned.nodes[n];
    if (!report.kept_outputs.count(node.name) || !IsLayer(pruned, node)) continue;
    auto it = std::find_if(original.nodes.begin(), original.nodes.end(), [&](const Node& o) { return o.name == node.name; });
    if (it == original.nodes.end()) continue;
    layers.push_back(n);
    original_values.push_back(it->outputs[0]);
  }
  int64_t rows = 0;
  for (const auto& batch : batches) rows += batch.empty() ? 0 : batch[0].shape()[0];
  if (rows == 0) return absl::InvalidArgumentError("recovering a pruned model needs calibration data");
  // Progress within layer k's share (every pass reports each batch, which
  // is also where a server's worker yields to serving).
  auto within = [&](size_t k) {
    return Part(options.progress, static_cast<double>(k) / layers.size(), static_cast<double>(k + 1) / layers.size());
  };
  // The original's output statistics per channel.
  std::vector<ChannelStats> target(layers.size());
  RETURN_IF_ERROR(VisitValues(original, original_values, batches, options.num_threads,
                              [&](size_t k, const Tensor& t) { target[k].Add(t); }, within(0)));
  for (size_t k = 0; k < layers.size(); ++k) {
    RETURN_IF_ERROR(Report(options.progress, static_cast<double>(k) / layers.size()));
    Node& node = pruned.nodes[layers[k]];
    const std::vector<int64_t>& kept = report.kept_outputs.at(node.name);
    const int64_t c = static_cast<int64_t>(kept.size());
    if (!node.HasInput(2)) {
      node.inputs.resize(3);
      node.inputs[2] = runtime::UniqueName(pruned, node.name + "_bias");
      pruned.initializers[node.inputs[2]] = *Tensor::Allocate(DataType::kFloat32, {c});
    }
    OwnConstant(pruned, node, 1);
    OwnConstant(pruned, node, 2);  // may add a constant: references only after both
    Tensor& w = pruned.initializers.at(node.inputs[1]);
    Tensor& bias = pruned.initializers.at(node.inputs[2]);
    if (bias.num_elements() != c) {  // a broadcast scalar becomes one per channel
      Tensor full = *Tensor::Allocate(DataType::kFloat32, {c});
      std::fill(full.data<float>(), full.data<float>() + c, bias.data<float>()[0]);
      bias = std::move(full);
    }
    LayerWeights lw(node, w, bias);
    const int64_t features = PatchFeatures(node, pruned);
    if (features > 0 && SolveCost(lw) < kMaxSolveFlops) {
      // Least squares: the weights that best give the original's outputs
      // from this layer's inputs as they are now.
      Samples samples;
      RETURN_IF_ERROR(VisitValues(original, {original_values[k]}, batches, options.num_threads,
                                  [&](size_t, const Tensor& y) { samples.AddTargets(y, rows, features); }, within(k)));
      RETURN_IF_ERROR(VisitValues(pruned, {node.inputs[0]}, batches, options.num_threads,
                                  [&](size_t, const Tensor& x) { samples.AddPatches(node, w, x); }, within(k)));
      samples.Solve(kept, lw);
      continue;
    }
    ChannelStats now;
    RETURN_IF_ERROR(VisitValues(pruned, {node.outputs[0]}, batches, options.num_threads,
                                [&](size_t, const Tensor& t) { now.Add(t); }, within(k)));
    for (int64_t ch = 0; ch < c; ++ch) {
      const double from_std = now.Std(ch), to_std = target[k].Std(kept[ch]);
      const double scale = from_std > 1e-12 && to_std > 1e-12 ? to_std / from_std : 1.0;
      const double shift = target[k].Mean(kept[ch]) - scale * now.Mean(ch);
      for (int64_t f = 0; f < lw.features; ++f) lw.At(ch, f) *= static_cast<float>(scale);
      lw.Bias(ch) = static_cast<float>(scale * lw.Bias(ch) + shift);
    }
  }
  return Report(options.progress, 1.0);
}

}  // namespace slimserve::compression
