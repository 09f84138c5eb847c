#include "runtime/onnx_import.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "onnx/onnx_pb.h"
#include "runtime/onnx_tensor.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

// IR versions up to this one are understood (ONNX 1.12 writes 8).
constexpr int64_t kMaxIrVersion = 10;

absl::StatusOr<ValueInfo> ConvertValueInfo(const onnx::ValueInfoProto& proto) {
  ValueInfo info;
  info.name = proto.name();
  if (!proto.has_type()) return info;  // untyped: known once the graph runs
  if (!proto.type().has_tensor_type()) {
    return absl::UnimplementedError(absl::StrCat(
        "value '", proto.name(), "' is not a tensor (sequences, maps and optionals are not supported)"));
  }
  const auto& tensor_type = proto.type().tensor_type();
  info.dtype = static_cast<DataType>(tensor_type.elem_type());
  if (tensor_type.has_shape()) {
    info.has_shape = true;
    for (const auto& dim : tensor_type.shape().dim()) {
      if (dim.has_dim_value()) {
        if (dim.dim_value() < 0) {
          return absl::InvalidArgumentError(absl::StrCat("value '", proto.name(),
                                                         "' has negative dimension ",
                                                         dim.dim_value()));
        }
        info.shape.push_back(dim.dim_value());
      } else {
        info.shape.push_back(-1);
      }
      info.dim_names.push_back(dim.dim_param());
    }
  }
  return info;
}

absl::StatusOr<Attribute> ConvertAttribute(const onnx::AttributeProto& proto,
                                           const std::string& base_dir,
                                           const ImportOptions& options) {
  Attribute attr;
  using A = onnx::AttributeProto;
  switch (proto.type()) {
    case A::FLOAT: attr.type = Attribute::Type::kFloat; attr.f = proto.f(); break;
    case A::INT: attr.type = Attribute::Type::kInt; attr.i = proto.i(); break;
    case A::STRING: attr.type = Attribute::Type::kString; attr.s = proto.s(); break;
    case A::TENSOR: {
      attr.type = Attribute::Type::kTensor;
      ASSIGN_OR_RETURN(attr.t, TensorFromProto(proto.t(), base_dir, options.max_tensor_bytes));
      break;
    }
    case A::FLOATS:
      attr.type = Attribute::Type::kFloats;
      attr.floats.assign(proto.floats().begin(), proto.floats().end());
      break;
    case A::INTS:
      attr.type = Attribute::Type::kInts;
      attr.ints.assign(proto.ints().begin(), proto.ints().end());
      break;
    case A::STRINGS:
      attr.type = Attribute::Type::kStrings;
      attr.strings.assign(proto.strings().begin(), proto.strings().end());
      break;
    case A::GRAPH:
    case A::GRAPHS: attr.type = Attribute::Type::kGraph; break;
    default:
      return absl::UnimplementedError(
          absl::StrCat("attribute '", proto.name(), "' has unsupported type ", proto.type()));
  }
  return attr;
}

// The value of a Constant node, from whichever attribute carries it.
absl::StatusOr<Tensor> ConstantValue(const Node& node) {
  auto it = node.attributes.begin();
  if (node.attributes.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), " must have exactly one value attribute"));
  }
  const std::string& key = it->first;
  const Attribute& a = it->second;
  if (key == "value") return a.t;
  if (key == "value_float") return Tensor::FromVector<float>({}, {a.f});
  if (key == "value_int") return Tensor::FromVector<int64_t>({}, {a.i});
  if (key == "value_floats") {
    return Tensor::FromVector<float>({static_cast<int64_t>(a.floats.size())}, a.floats);
  }
  if (key == "value_ints") {
    return Tensor::FromVector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints);
  }
  return absl::UnimplementedError(
      absl::StrCat(node.Describe(), ": Constant with attribute '", key, "' is not supported"));
}

absl::StatusOr<Graph> ConvertModel(const onnx::ModelProto& model, const std::string& base_dir,
                                   const ImportOptions& options) {
  Graph graph;
  graph.ir_version = model.ir_version();
  graph.producer = model.producer_name();
  if (graph.ir_version > kMaxIrVersion) {
    return absl::UnimplementedError(absl::StrCat("model has ONNX IR version ", graph.ir_version,
                                                 "; slimserve reads up to ", kMaxIrVersion));
  }
  for (const auto& opset : model.opset_import()) {
    if (opset.domain().empty() || opset.domain() == "ai.onnx") graph.opset = opset.version();
  }
  if (graph.opset > kMaxSupportedOpset) {
    return absl::UnimplementedError(absl::StrCat("model uses ONNX opset ", graph.opset,
                                                 "; slimserve supports opsets up to ",
                                                 kMaxSupportedOpset));
  }
  if (!model.has_graph()) return absl::InvalidArgumentError("model has no graph");
  const onnx::GraphProto& g = model.graph();
  graph.name = g.name();

  for (const auto& init : g.initializer()) {
    if (init.name().empty()) return absl::InvalidArgumentError("an initializer has no name");
    ASSIGN_OR_RETURN(Tensor t, TensorFromProto(init, base_dir, options.max_tensor_bytes));
    if (!graph.initializers.emplace(init.name(), std::move(t)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", init.name(), "' is defined twice"));
    }
  }
  for (const auto& sparse : g.sparse_initializer()) {
    ASSIGN_OR_RETURN(Tensor t, DenseFromSparseProto(sparse, base_dir, options.max_tensor_bytes));
    if (!graph.initializers.emplace(sparse.values().name(), std::move(t)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", sparse.values().name(), "' is defined twice"));
    }
  }
  for (const auto& in : g.input()) {
    if (graph.initializers.contains(in.name())) continue;  // an initializer with a default
    ASSIGN_OR_RETURN(ValueInfo info, ConvertValueInfo(in));
    graph.inputs.push_back(std::move(info));
  }
  for (const auto& out : g.output()) {
    ASSIGN_OR_RETURN(ValueInfo info, ConvertValueInfo(out));
    graph.outputs.push_back(std::move(info));
  }
  for (const auto& vi : g.value_info()) {
    absl::StatusOr<ValueInfo> info = ConvertValueInfo(vi);
    if (info.ok()) graph.value_info[vi.name()] = *std::move(info);
  }

  for (const auto& np : g.node()) {
    Node node;
    node.name = np.name();
    node.op_type = np.op_type();
    node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    node.inputs.assign(np.input().begin(), np.input().end());
    node.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& ap : np.attribute()) {
      absl::StatusOr<Attribute> attr = ConvertAttribute(ap, base_dir, options);
      if (!attr.ok()) {
        return absl::Status(attr.status().code(),
                            absl::StrCat(node.Describe(), ": ", attr.status().message()));
      }
      node.attributes[ap.name()] = *std::move(attr);
    }
    if (node.op_type == "Constant" && node.domain.empty()) {
      if (node.outputs.size() != 1 || node.outputs[0].empty()) {
        return absl::InvalidArgumentError(absl::StrCat(node.Describe(), " must have one output"));
      }
      ASSIGN_OR_RETURN(Tensor value, ConstantValue(node));
      if (!graph.initializers.emplace(node.outputs[0], std::move(value)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(node.Describe(), " redefines '", node.outputs[0], "'"));
      }
      continue;
    }
    if (node.domain.empty() && graph.opset == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          node.Describe(), " is in the default ONNX domain, which the model does not import"));
    }
    graph.nodes.push_back(std::move(node));
  }
  RETURN_IF_ERROR(graph.Validate());
  return graph;
}

}  // namespace

absl::StatusOr<Graph> ImportOnnxBytes(absl::string_view bytes, const std::string& base_dir,
                                      const ImportOptions& options) {
  if (static_cast<int64_t>(bytes.size()) > options.max_model_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("model is ", bytes.size(),
                                                   " bytes; the limit is ",
                                                   options.max_model_bytes));
  }
  if (bytes.empty()) return absl::InvalidArgumentError("model is empty");
  onnx::ModelProto model;
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "model is not a valid ONNX protobuf (truncated, corrupt or not an ONNX file)");
  }
  return ConvertModel(model, base_dir, options);
}

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path, const ImportOptions& options) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot open model '", path, "': ", ec.message()));
  if (static_cast<int64_t>(size) > options.max_model_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("model '", path, "' is ", size,
                                                   " bytes; the limit is ", options.max_model_bytes));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open model '", path, "'"));
  std::string bytes(size, '\0');
  file.read(bytes.data(), static_cast<std::streamsize>(size));
  if (!file) return absl::DataLossError(absl::StrCat("cannot read model '", path, "'"));
  std::string dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<Graph> graph = ImportOnnxBytes(bytes, dir.empty() ? "." : dir, options);
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat("model '", path, "': ", graph.status().message()));
  }
  return graph;
}

}  // namespace slimserve::runtime
