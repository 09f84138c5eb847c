#include "runtime/onnx_export.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "onnx/onnx_pb.h"
#include "runtime/status_macros.h"

namespace slimserve::runtime {
namespace {

// The runtime's DataType values are ONNX's TensorProto.DataType numbers.
absl::Status ToProto(const Tensor& t, const std::string& name, onnx::TensorProto& proto) {
  if (t.dtype() == DataType::kString) return absl::UnimplementedError(absl::StrCat("tensor '", name, "' holds strings"));
  proto.set_name(name);
  proto.set_data_type(static_cast<int>(t.dtype()));
  for (int64_t d : t.shape()) proto.add_dims(d);
  proto.set_raw_data(t.raw_data(), t.byte_size());
  return absl::OkStatus();
}

// Float constants of at least this many elements, two thirds or more of
// them zero, are stored sparse (values and int64 positions: 12 bytes per
// non-zero instead of 4 per element).
constexpr int64_t kSparseMinElements = 4096;

bool StoreSparse(const Tensor& t) {
  if (t.dtype() != DataType::kFloat32 || t.num_elements() < kSparseMinElements) return false;
  const float* v = t.data<float>();
  const int64_t zeros = std::count(v, v + t.num_elements(), 0.0f);
  return 3 * zeros >= 2 * t.num_elements();
}

// The non-zero values of `t` and their linear positions (ONNX's
// SparseTensorProto, format (b)).
void ToSparseProto(const Tensor& t, const std::string& name, onnx::SparseTensorProto& proto) {
  for (int64_t d : t.shape()) proto.add_dims(d);
  onnx::TensorProto& values = *proto.mutable_values();
  onnx::TensorProto& indices = *proto.mutable_indices();
  values.set_name(name);
  values.set_data_type(static_cast<int>(DataType::kFloat32));
  indices.set_data_type(static_cast<int>(DataType::kInt64));
  std::vector<float> nonzero;
  std::vector<int64_t> positions;
  const float* v = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (v[i] == 0) continue;
    nonzero.push_back(v[i]);
    positions.push_back(i);
  }
  values.add_dims(static_cast<int64_t>(nonzero.size()));
  indices.add_dims(static_cast<int64_t>(positions.size()));
  values.set_raw_data(nonzero.data(), nonzero.size() * sizeof(float));
  indices.set_raw_data(positions.data(), positions.size() * sizeof(int64_t));
}

void ToProto(const ValueInfo& info, onnx::ValueInfoProto& proto) {
  proto.set_name(info.name);
  onnx::TypeProto::Tensor* type = proto.mutable_type()->mutable_tensor_type();
  type->set_elem_type(static_cast<int>(info.dtype));
  if (!info.has_shape) return;
  onnx::TensorShapeProto* shape = type->mutable_shape();
  for (size_t d = 0; d < info.shape.size(); ++d) {
    onnx::TensorShapeProto::Dimension* dim = shape->add_dim();
    if (d < info.dim_names.size() && !info.dim_names[d].empty()) {
      dim->set_dim_param(info.dim_names[d]);
    } else if (info.shape[d] >= 0) {
      dim->set_dim_value(info.shape[d]);
    }
  }
}

absl::Status ToProto(const Node& node, int64_t opset, onnx::NodeProto& proto) {
  if (!node.domain.empty()) {
    return absl::UnimplementedError(absl::StrCat(node.Describe(), " is the runtime's own op (domain '", node.domain,
                                                 "'), which ONNX does not have; export the graph before fusion"));
  }
  if (opset < 13 && node.Has("axis") && (node.op_type == "QuantizeLinear" || node.op_type == "DequantizeLinear")) {
    return absl::UnimplementedError(absl::StrCat(node.Describe(), ": per-channel scales need ONNX opset 13; the model is "
                                                 "opset ", opset));
  }
  proto.set_name(node.name);
  proto.set_op_type(node.op_type);
  for (const std::string& in : node.inputs) proto.add_input(in);
  for (const std::string& out : node.outputs) proto.add_output(out);
  for (const auto& [name, a] : node.attributes) {
    onnx::AttributeProto* attr = proto.add_attribute();
    attr->set_name(name);
    switch (a.type) {
      case Attribute::Type::kFloat:
        attr->set_type(onnx::AttributeProto::FLOAT);
        attr->set_f(a.f);
        break;
      case Attribute::Type::kInt:
        attr->set_type(onnx::AttributeProto::INT);
        attr->set_i(a.i);
        break;
      case Attribute::Type::kString:
        attr->set_type(onnx::AttributeProto::STRING);
        attr->set_s(a.s);
        break;
      case Attribute::Type::kTensor:
        attr->set_type(onnx::AttributeProto::TENSOR);
        RETURN_IF_ERROR(ToProto(a.t, "", *attr->mutable_t()));
        break;
      case Attribute::Type::kFloats:
        attr->set_type(onnx::AttributeProto::FLOATS);
        for (float f : a.floats) attr->add_floats(f);
        break;
      case Attribute::Type::kInts:
        attr->set_type(onnx::AttributeProto::INTS);
        for (int64_t i : a.ints) attr->add_ints(i);
        break;
      case Attribute::Type::kStrings:
        attr->set_type(onnx::AttributeProto::STRINGS);
        for (const std::string& s : a.strings) attr->add_strings(s);
        break;
      case Attribute::Type::kGraph:
        return absl::UnimplementedError(absl::StrCat(node.Describe(), ": graph attributes are not exported"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ExportOnnxBytes(const Graph& graph) {
  onnx::ModelProto model;
  // IR version 8 (ONNX 1.10+): what the opsets exported here need, and what
  // ONNX Runtime 1.x reads.
  model.set_ir_version(std::max<int64_t>(graph.ir_version, 8));
  model.set_producer_name("slimserve");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(graph.opset);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name(graph.name.empty() ? "slimserve" : graph.name);
  for (const ValueInfo& in : graph.inputs) ToProto(in, *g->add_input());
  for (const ValueInfo& out : graph.outputs) ToProto(out, *g->add_output());
  // Initializers in name order, so that the same graph gives the same bytes.
  std::vector<const std::string*> names;
  for (const auto& [name, t] : graph.initializers) names.push_back(&name);
  std::sort(names.begin(), names.end(), [](const auto* a, const auto* b) { return *a < *b; });
  for (const std::string* name : names) {
    const Tensor& t = graph.initializers.at(*name);
    if (StoreSparse(t)) {
      ToSparseProto(t, *name, *g->add_sparse_initializer());
    } else {
      RETURN_IF_ERROR(ToProto(t, *name, *g->add_initializer()));
    }
  }
  for (const Node& node : graph.nodes) RETURN_IF_ERROR(ToProto(node, graph.opset, *g->add_node()));
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return absl::ResourceExhaustedError("the model is too large for one ONNX file (2 GiB)");
  }
  return bytes;
}

absl::Status ExportOnnxFile(const Graph& graph, const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ExportOnnxBytes(graph));
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write '", temporary, "'"));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("cannot rename '", temporary, "' to '", path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace slimserve::runtime
