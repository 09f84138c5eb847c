#include "server/core/dataset_store.h"

#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "runtime/status_macros.h"
#include "server/core/config.h"
#include "server/core/repository.h"
#include "server/core/storage.h"

namespace slimserve::server {
namespace {

namespace fs = std::filesystem;

int64_t RowBytes(const v1::DataSetTensor& t) {
  int64_t n = 1;
  for (int d = 1; d < t.shape_size(); ++d) n *= t.shape(d);
  const std::optional<runtime::DataType> dtype = ParseWireDataType(t.datatype());
  return dtype.has_value() ? n * static_cast<int64_t>(runtime::DataTypeSize(*dtype)) : -1;
}

bool SameRowShape(const v1::DataSetTensor& a, const v1::DataSetTensor& b) {
  if (a.name() != b.name() || a.datatype() != b.datatype() || a.shape_size() != b.shape_size()) return false;
  for (int d = 1; d < a.shape_size(); ++d) {
    if (a.shape(d) != b.shape(d)) return false;
  }
  return true;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::Status DataSetUpload::Add(const v1::DataSetChunk& chunk) {
  if (chunks_++ == 0) {
    RETURN_IF_ERROR(CheckModelName(chunk.name()));
    data_.mutable_info()->set_name(chunk.name());
    total_rows_ = chunk.total_rows();
  }
  if (chunk.tensors_size() == 0) return absl::InvalidArgumentError("a data set chunk without tensors");
  if (chunks_ > 1 && chunk.tensors_size() != data_.tensors_size()) {
    return absl::InvalidArgumentError("every chunk of a data set must carry the same tensors");
  }
  const int64_t rows = chunk.tensors(0).shape_size() > 0 ? chunk.tensors(0).shape(0) : -1;
  for (int i = 0; i < chunk.tensors_size(); ++i) {
    const v1::DataSetTensor& t = chunk.tensors(i);
    const int64_t row_bytes = RowBytes(t);
    if (row_bytes < 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name(), "': unknown datatype '", t.datatype(), "'"));
    }
    if (t.shape_size() < 1 || t.shape(0) != rows || rows < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name(), "': every tensor of a chunk needs the same number of rows (first dimension)"));
    }
    if (static_cast<int64_t>(t.raw_contents().size()) != rows * row_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name(), "' has ", t.raw_contents().size(),
                                                     " bytes of contents; its shape needs ", rows * row_bytes));
    }
    if (chunks_ == 1) {
      *data_.add_tensors() = t;
    } else if (!SameRowShape(t, data_.tensors(i))) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name(), "' differs from the first chunk's in name, datatype or shape"));
    } else {
      v1::DataSetTensor& joined = *data_.mutable_tensors(i);
      joined.set_shape(0, joined.shape(0) + rows);
      joined.mutable_raw_contents()->append(t.raw_contents());
    }
    bytes_ += static_cast<int64_t>(t.raw_contents().size());
  }
  if (chunk.labels_size() != 0 && chunk.labels_size() != rows) {
    return absl::InvalidArgumentError(absl::StrCat("a chunk of ", rows, " rows with ", chunk.labels_size(), " labels"));
  }
  if ((chunk.labels_size() > 0) != (data_.labels_size() > 0) && rows_ > 0) {
    return absl::InvalidArgumentError("labels must come with every chunk or with none");
  }
  data_.mutable_labels()->Add(chunk.labels().begin(), chunk.labels().end());
  rows_ += rows;
  if (bytes_ > max_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the data set is larger than the server's limit of ", max_bytes_, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::StoredDataSet> DataSetUpload::Finish() {
  if (chunks_ == 0) return absl::InvalidArgumentError("an empty upload: no data set chunks came");
  if (total_rows_ > 0 && rows_ != total_rows_) {
    return absl::InvalidArgumentError(absl::StrCat("the upload of data set '", data_.info().name(), "' ended after ",
                                                   rows_, " of the ", total_rows_, " rows it announced"));
  }
  return std::move(data_);
}

DataSetStore::DataSetStore(std::string root) : root_(std::move(root)) {
  std::error_code error;
  fs::create_directories(root_, error);
  for (const auto& entry : fs::directory_iterator(root_, error)) {
    if (entry.path().extension() != ".pb") continue;
    v1::StoredDataSet data;
    if (ReadMessage(entry.path().string(), data).ok()) infos_[data.info().name()] = data.info();
  }
}

absl::StatusOr<v1::DataSetInfo> DataSetStore::Put(v1::StoredDataSet data) {
  v1::DataSetInfo& info = *data.mutable_info();
  RETURN_IF_ERROR(CheckModelName(info.name()));
  std::string contents;
  info.clear_tensors();
  for (const v1::DataSetTensor& t : data.tensors()) {
    v1::DataSetTensor& meta = *info.add_tensors();
    meta = t;
    meta.clear_raw_contents();
    absl::StrAppend(&contents, t.name(), t.datatype(), t.shape(0), "\n", t.raw_contents());
  }
  for (int64_t label : data.labels()) absl::StrAppend(&contents, label, ",");
  info.set_rows(data.tensors_size() > 0 ? data.tensors(0).shape(0) : 0);
  info.set_size_bytes(static_cast<int64_t>(contents.size()));
  info.set_labelled(data.labels_size() > 0);
  info.set_sha256(Sha256Hex(contents));
  info.set_created_unix_ms(NowMs());
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(WriteMessage(Path(info.name()), data));
  infos_[info.name()] = info;
  return info;
}

absl::StatusOr<v1::StoredDataSet> DataSetStore::Get(const std::string& name) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!infos_.count(name)) {
      return absl::NotFoundError(absl::StrCat("no data set '", name, "'; upload it first (slimctl datasets upload)"));
    }
  }
  v1::StoredDataSet data;
  RETURN_IF_ERROR(ReadMessage(Path(name), data));
  return data;
}

std::vector<v1::DataSetInfo> DataSetStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::DataSetInfo> out;
  for (const auto& [name, info] : infos_) out.push_back(info);
  return out;
}

absl::StatusOr<v1::DataSetInfo> DataSetStore::Remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = infos_.find(name);
  if (it == infos_.end()) return absl::NotFoundError(absl::StrCat("no data set '", name, "'"));
  v1::DataSetInfo info = it->second;
  infos_.erase(it);
  std::error_code error;
  fs::remove(Path(name), error);
  return info;
}

absl::StatusOr<compression::DataSet> ToDataSet(const v1::StoredDataSet& data, const runtime::Graph& graph) {
  std::vector<std::pair<std::string, runtime::Tensor>> arrays;
  for (const v1::DataSetTensor& t : data.tensors()) {
    const runtime::Shape shape(t.shape().begin(), t.shape().end());
    const std::optional<runtime::DataType> dtype = ParseWireDataType(t.datatype());
    if (!dtype.has_value()) return absl::DataLossError(absl::StrCat("data set '", data.info().name(), "' is corrupt"));
    ASSIGN_OR_RETURN(runtime::Tensor tensor, runtime::Tensor::Allocate(*dtype, shape));
    if (tensor.byte_size() != t.raw_contents().size()) {
      return absl::DataLossError(absl::StrCat("data set '", data.info().name(), "' is corrupt"));
    }
    std::memcpy(tensor.raw_data(), t.raw_contents().data(), tensor.byte_size());
    arrays.emplace_back(t.name(), std::move(tensor));
  }
  if (data.labels_size() > 0) {
    arrays.emplace_back("labels", runtime::Tensor::FromVector<int64_t>(
                                      {data.labels_size()}, std::vector<int64_t>(data.labels().begin(), data.labels().end())));
  }
  return compression::MakeDataSet(std::move(arrays), graph, absl::StrCat("data set '", data.info().name(), "'"));
}

}  // namespace slimserve::server
