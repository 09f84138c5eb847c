#include "compression/dataset.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/npy.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {

using runtime::Tensor;

namespace {

Tensor Rows(const Tensor& t, int64_t begin, int64_t count) {
  runtime::Shape shape = t.shape();
  shape[0] = count;
  Tensor part = *Tensor::Allocate(t.dtype(), shape);
  const size_t row = t.shape()[0] > 0 ? t.byte_size() / t.shape()[0] : 0;
  std::memcpy(part.raw_data(), static_cast<const char*>(t.raw_data()) + begin * row, count * row);
  return part;
}

}  // namespace

std::vector<std::vector<Tensor>> DataSet::Batches(int64_t begin, int64_t count, int64_t batch) const {
  std::vector<std::vector<Tensor>> batches;
  const int64_t end = std::min(rows(), begin + count);
  for (int64_t b = begin; b < end; b += batch) {
    std::vector<Tensor> part;
    for (const Tensor& t : inputs) part.push_back(Rows(t, b, std::min(batch, end - b)));
    batches.push_back(std::move(part));
  }
  return batches;
}

absl::StatusOr<DataSet> LoadDataSet(const std::string& path, const runtime::Graph& graph) {
  ASSIGN_OR_RETURN(auto members, runtime::ReadNpz(path));
  return MakeDataSet(std::move(members), graph, "'" + path + "'");
}

absl::StatusOr<DataSet> MakeDataSet(std::vector<std::pair<std::string, Tensor>> members, const runtime::Graph& graph,
                                    const std::string& what) {
  DataSet data;
  std::vector<std::string> names;
  for (auto& [name, t] : members) {
    if (name == "labels") {
      if (t.dtype() != runtime::DataType::kInt64 || t.rank() != 1) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": labels must be int64 [rows]"));
      }
      data.labels = std::move(t);
    } else {
      names.push_back(name);
    }
  }
  for (const runtime::ValueInfo& input : graph.inputs) {
    auto it = std::find_if(members.begin(), members.end(), [&](const auto& m) {
      return m.first == input.name || (graph.inputs.size() == 1 && names.size() == 1 && m.first == names[0]);
    });
    if (it == members.end()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has no array for model input '", input.name,
                                                     "' (arrays: ", absl::StrJoin(names, ", "), ")"));
    }
    const Tensor& t = it->second;
    bool fits = t.dtype() == input.dtype && t.rank() >= 1 && (!input.has_shape || t.shape().size() == input.shape.size());
    for (size_t d = 1; fits && input.has_shape && d < input.shape.size(); ++d) {
      fits = input.shape[d] < 0 || input.shape[d] == t.shape()[d];
    }
    if (!fits) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": array '", it->first, "' is ", runtime::DataTypeName(t.dtype()), " ",
          runtime::ShapeToString(t.shape()), " but model input '", input.name, "' is ",
          runtime::DataTypeName(input.dtype), " ", runtime::ShapeToString(input.shape), " (rows first)"));
    }
    data.inputs.push_back(t);
  }
  for (const Tensor& t : data.inputs) {
    if (t.shape()[0] != data.rows()) return absl::InvalidArgumentError(absl::StrCat(what, ": arrays differ in rows"));
  }
  if (data.labels.defined() && data.labels.shape()[0] != data.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", data.labels.shape()[0], " labels for ",
                                                   data.rows(), " rows"));
  }
  return data;
}

}  // namespace slimserve::compression
