#include "runtime/graph.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace slimserve::runtime {

int64_t Node::GetInt(const std::string& attr, int64_t fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.i;
}

float Node::GetFloat(const std::string& attr, float fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.f;
}

std::string Node::GetString(const std::string& attr, const std::string& fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.s;
}

std::vector<int64_t> Node::GetInts(const std::string& attr, std::vector<int64_t> fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.ints;
}

std::vector<float> Node::GetFloats(const std::string& attr, std::vector<float> fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.floats;
}

const Tensor* Node::GetTensor(const std::string& attr) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? nullptr : &it->second.t;
}

std::string Node::Describe() const {
  return name.empty() ? absl::StrCat(op_type, " node producing '",
                                     outputs.empty() ? "" : outputs[0], "'")
                      : absl::StrCat(op_type, " node '", name, "'");
}

absl::Status Graph::Validate() const {
  absl::flat_hash_set<std::string> defined;
  for (const auto& in : inputs) {
    if (!defined.insert(in.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("graph input '", in.name, "' is declared twice"));
    }
  }
  for (const auto& [name, tensor] : initializers) defined.insert(name);
  for (const Node& node : nodes) {
    for (const std::string& in : node.inputs) {
      if (!in.empty() && !defined.contains(in)) {
        return absl::InvalidArgumentError(absl::StrCat(
            node.Describe(), " reads '", in,
            "', which no graph input, initializer or earlier node defines (missing input, or "
            "the graph has a cycle or is not topologically sorted)"));
      }
    }
    for (const std::string& out : node.outputs) {
      if (!out.empty() && !defined.insert(out).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(node.Describe(), " writes '", out, "', which is already defined"));
      }
    }
  }
  for (const auto& out : outputs) {
    if (!defined.contains(out.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", out.name, "' is not produced by any node"));
    }
  }
  return absl::OkStatus();
}

absl::flat_hash_map<std::string, int> Graph::UseCounts() const {
  absl::flat_hash_map<std::string, int> uses;
  for (const Node& node : nodes) {
    for (const std::string& in : node.inputs) {
      if (!in.empty()) ++uses[in];
    }
  }
  for (const auto& out : outputs) ++uses[out.name];
  return uses;
}

}  // namespace slimserve::runtime
