#include "server/grpc/tensor_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/status_macros.h"
#include "server/core/config.h"

namespace slimserve::server {
namespace {

using runtime::DataType;
using runtime::Tensor;

int ContentsCount(const inference::InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() + c.fp64_contents_size() + c.bytes_contents_size();
}

// Copies typed contents `values` into `t`, converting to its element type.
template <typename T, typename Repeated>
absl::Status Fill(const Repeated& values, const char* field, Tensor& t, const std::string& name) {
  if (values.size() != t.num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has ", values.size(), " values in contents.",
                                                   field, " but its shape holds ", t.num_elements()));
  }
  T* out = t.data<T>();
  for (int i = 0; i < values.size(); ++i) out[i] = static_cast<T>(values.Get(i));
  return absl::OkStatus();
}

absl::Status FillTyped(const inference::InferTensorContents& c, Tensor& t, const std::string& name) {
  switch (t.dtype()) {
    case DataType::kFloat32: return Fill<float>(c.fp32_contents(), "fp32_contents", t, name);
    case DataType::kFloat64: return Fill<double>(c.fp64_contents(), "fp64_contents", t, name);
    case DataType::kInt8: return Fill<int8_t>(c.int_contents(), "int_contents", t, name);
    case DataType::kInt16: return Fill<int16_t>(c.int_contents(), "int_contents", t, name);
    case DataType::kInt32: return Fill<int32_t>(c.int_contents(), "int_contents", t, name);
    case DataType::kInt64: return Fill<int64_t>(c.int64_contents(), "int64_contents", t, name);
    case DataType::kUint8: return Fill<uint8_t>(c.uint_contents(), "uint_contents", t, name);
    case DataType::kUint16: return Fill<uint16_t>(c.uint_contents(), "uint_contents", t, name);
    case DataType::kUint32: return Fill<uint32_t>(c.uint_contents(), "uint_contents", t, name);
    case DataType::kUint64: return Fill<uint64_t>(c.uint64_contents(), "uint64_contents", t, name);
    case DataType::kBool: return Fill<bool>(c.bool_contents(), "bool_contents", t, name);
    default:
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is ", WireDataType(t.dtype()),
                                                     ", which must be sent as raw_input_contents"));
  }
}

template <typename T, typename Repeated>
void Append(const Tensor& t, Repeated* out) {
  const T* values = t.data<T>();
  out->Reserve(static_cast<int>(t.num_elements()));
  for (int64_t i = 0; i < t.num_elements(); ++i) out->Add(values[i]);
}

// Every type but FP16 and BF16 has a typed field.
void AppendTyped(const Tensor& t, inference::InferTensorContents& c) {
  switch (t.dtype()) {
    case DataType::kFloat32: return Append<float>(t, c.mutable_fp32_contents());
    case DataType::kFloat64: return Append<double>(t, c.mutable_fp64_contents());
    case DataType::kInt8: return Append<int8_t>(t, c.mutable_int_contents());
    case DataType::kInt16: return Append<int16_t>(t, c.mutable_int_contents());
    case DataType::kInt32: return Append<int32_t>(t, c.mutable_int_contents());
    case DataType::kInt64: return Append<int64_t>(t, c.mutable_int64_contents());
    case DataType::kUint8: return Append<uint8_t>(t, c.mutable_uint_contents());
    case DataType::kUint16: return Append<uint16_t>(t, c.mutable_uint_contents());
    case DataType::kUint32: return Append<uint32_t>(t, c.mutable_uint_contents());
    case DataType::kUint64: return Append<uint64_t>(t, c.mutable_uint64_contents());
    case DataType::kBool: return Append<bool>(t, c.mutable_bool_contents());
    default: return;
  }
}

}  // namespace

bool UsesTypedContents(const inference::ModelInferRequest& request) {
  for (const auto& input : request.inputs()) {
    if (ContentsCount(input.contents()) > 0) return true;
  }
  return false;
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> DecodeInputs(const inference::ModelInferRequest& request,
                                                                         int64_t max_tensor_bytes) {
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat("the request has ", request.inputs_size(), " inputs but ",
                                                   request.raw_input_contents_size(),
                                                   " raw_input_contents; give one per input, in order"));
  }
  if (raw && UsesTypedContents(request)) {
    return absl::InvalidArgumentError("use raw_input_contents or typed contents, not both");
  }
  std::vector<std::pair<std::string, Tensor>> inputs;
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& input = request.inputs(i);
    const std::optional<DataType> dtype = ParseWireDataType(input.datatype());
    if (!dtype.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("input '", input.name(), "' has datatype '", input.datatype(),
                                                     "', which this server does not support (FP32, FP16, BF16, "
                                                     "FP64, INT8..INT64, UINT8..UINT64, BOOL)"));
    }
    runtime::Shape shape(input.shape().begin(), input.shape().end());
    for (int64_t d : shape) {
      // A dimension over the byte limit cannot be real, even where another is 0.
      if (d < 0 || d > max_tensor_bytes) {
        return absl::InvalidArgumentError(absl::StrCat("input '", input.name(), "' has an impossible dimension ", d,
                                                       " in shape [", absl::StrJoin(shape, ","), "]"));
      }
    }
    absl::StatusOr<Tensor> tensor = Tensor::Allocate(*dtype, shape, max_tensor_bytes);
    if (!tensor.ok()) {
      return absl::Status(tensor.status().code(), absl::StrCat("input '", input.name(), "': ", tensor.status().message()));
    }
    if (raw) {
      const std::string& bytes = request.raw_input_contents(i);
      if (bytes.size() != tensor->byte_size()) {
        return absl::InvalidArgumentError(absl::StrCat("input '", input.name(), "' has ", bytes.size(),
                                                       " bytes of raw content but ", input.datatype(), " shape [",
                                                       absl::StrJoin(shape, ","), "] needs ", tensor->byte_size()));
      }
      if (!bytes.empty()) std::memcpy(tensor->raw_data(), bytes.data(), bytes.size());
    } else {
      RETURN_IF_ERROR(FillTyped(input.contents(), *tensor, input.name()));
    }
    inputs.emplace_back(input.name(), *std::move(tensor));
  }
  return inputs;
}

void EncodeOutputs(const std::vector<std::string>& names, const std::vector<Tensor>& tensors, bool typed,
                   inference::ModelInferResponse& response) {
  // raw_output_contents holds one entry per output or none: a reply is typed
  // only if every output's type has a typed field.
  for (const Tensor& t : tensors) typed &= t.dtype() != DataType::kFloat16 && t.dtype() != DataType::kBFloat16;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& tensor = tensors[i];
    auto* out = response.add_outputs();
    out->set_name(names[i]);
    out->set_datatype(WireDataType(tensor.dtype()));
    for (int64_t d : tensor.shape()) out->add_shape(d);
    if (typed) {
      AppendTyped(tensor, *out->mutable_contents());
    } else {
      response.add_raw_output_contents()->assign(static_cast<const char*>(tensor.raw_data()), tensor.byte_size());
    }
  }
}

absl::StatusOr<Tensor> DecodeOutput(const inference::ModelInferResponse& response, int i) {
  const auto& out = response.outputs(i);
  const std::optional<DataType> dtype = ParseWireDataType(out.datatype());
  if (!dtype.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("output '", out.name(), "' has unknown datatype ", out.datatype()));
  }
  ASSIGN_OR_RETURN(Tensor tensor, Tensor::Allocate(*dtype, runtime::Shape(out.shape().begin(), out.shape().end())));
  if (response.raw_output_contents_size() == 0) {
    RETURN_IF_ERROR(FillTyped(out.contents(), tensor, out.name()));
    return tensor;
  }
  if (i >= response.raw_output_contents_size() || response.raw_output_contents(i).size() != tensor.byte_size()) {
    return absl::InvalidArgumentError(absl::StrCat("output '", out.name(), "': raw contents do not match its shape"));
  }
  std::memcpy(tensor.raw_data(), response.raw_output_contents(i).data(), tensor.byte_size());
  return tensor;
}

void EncodeInput(const std::string& name, const Tensor& tensor, inference::ModelInferRequest& request) {
  auto* in = request.add_inputs();
  in->set_name(name);
  in->set_datatype(WireDataType(tensor.dtype()));
  for (int64_t d : tensor.shape()) in->add_shape(d);
  request.add_raw_input_contents()->assign(static_cast<const char*>(tensor.raw_data()), tensor.byte_size());
}

}  // namespace slimserve::server
