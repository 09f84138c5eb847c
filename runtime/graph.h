// Graph: the runtime's in-memory form of a model, independent of ONNX's protobuf.
//
// Values are named by strings, as in ONNX: every node input names a graph
// input, an initializer or an earlier node's output; "" marks an omitted
// optional input or output. `nodes` is kept in topological order by the
// importer and by every pass. Not thread-safe; a Graph is built, optimized,
// then handed to an Executor which only reads it.
#ifndef SLIMSERVE_RUNTIME_GRAPH_H_
#define SLIMSERVE_RUNTIME_GRAPH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "runtime/tensor.h"

namespace slimserve::runtime {

struct Attribute {
  enum class Type { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kGraph };
  Type type = Type::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;

  bool Has(const std::string& attr) const { return attributes.count(attr) > 0; }
  int64_t GetInt(const std::string& attr, int64_t fallback) const;
  float GetFloat(const std::string& attr, float fallback) const;
  std::string GetString(const std::string& attr, const std::string& fallback) const;
  std::vector<int64_t> GetInts(const std::string& attr,
                               std::vector<int64_t> fallback = {}) const;
  std::vector<float> GetFloats(const std::string& attr, std::vector<float> fallback = {}) const;
  const Tensor* GetTensor(const std::string& attr) const;
  // True when optional input i is given.
  bool HasInput(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  // "Conv 'conv1'" for error messages.
  std::string Describe() const;
};

// Declared type of a graph input or output. A dim of -1 is unknown (symbolic);
// `shape` is empty with `has_shape` false when even the rank is unknown.
struct ValueInfo {
  std::string name;
  DataType dtype = DataType::kUndefined;
  Shape shape;
  std::vector<std::string> dim_names;  // symbolic names, "" where none
  bool has_shape = false;
};

struct Graph {
  std::string name;
  int64_t opset = 0;  // version of the default ONNX domain
  int64_t ir_version = 0;
  std::string producer;
  std::vector<ValueInfo> inputs;  // excludes initializers
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;
  absl::flat_hash_map<std::string, Tensor> initializers;
  // Declared types of intermediate values (from the model's value_info), by name.
  absl::flat_hash_map<std::string, ValueInfo> value_info;

  // Checks that nodes are in topological order, every input is defined before
  // use, every value has one producer and every output is produced.
  absl::Status Validate() const;
  // Number of consumers of each value name (graph outputs count as consumers).
  absl::flat_hash_map<std::string, int> UseCounts() const;
};

}  // namespace slimserve::runtime

#endif  // SLIMSERVE_RUNTIME_GRAPH_H_
