// Data sets uploaded for calibration and evaluation, one file each under a
// folder (<root>/<name>.pb, slimserve.v1.StoredDataSet, written atomically).
//
//   DataSetUpload upload(max_bytes);
//   for (const auto& chunk : stream) RETURN_IF_ERROR(upload.Add(chunk));
//   ASSIGN_OR_RETURN(v1::StoredDataSet data, upload.Finish());
//   ASSIGN_OR_RETURN(v1::DataSetInfo info, store.Put(std::move(data)));
#ifndef SLIMSERVE_SERVER_CORE_DATASET_STORE_H_
#define SLIMSERVE_SERVER_CORE_DATASET_STORE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "compression/dataset.h"
#include "proto/compression.pb.h"
#include "runtime/graph.h"

namespace slimserve::server {

// Joins the chunks of one upload: every chunk carries the same tensors (name,
// datatype, dimensions after the first) and labels for all its rows or none.
// Not thread-safe.
class DataSetUpload {
 public:
  explicit DataSetUpload(int64_t max_bytes) : max_bytes_(max_bytes) {}
  absl::Status Add(const v1::DataSetChunk& chunk);
  // Fails when nothing came, or fewer or more rows than the first chunk's
  // total_rows announced (a stream cut short).
  absl::StatusOr<v1::StoredDataSet> Finish();

 private:
  const int64_t max_bytes_;
  v1::StoredDataSet data_;
  int64_t chunks_ = 0, rows_ = 0, bytes_ = 0, total_rows_ = 0;
};

// Thread-safe.
class DataSetStore {
 public:
  explicit DataSetStore(std::string root);

  // Stores `data` under data.info().name() (a model name's rules), replacing
  // one of that name; fills in the info (rows, size, digest).
  absl::StatusOr<v1::DataSetInfo> Put(v1::StoredDataSet data);
  absl::StatusOr<v1::StoredDataSet> Get(const std::string& name) const;
  std::vector<v1::DataSetInfo> List() const;
  absl::StatusOr<v1::DataSetInfo> Remove(const std::string& name);

 private:
  std::string Path(const std::string& name) const { return root_ + "/" + name + ".pb"; }

  const std::string root_;
  mutable std::mutex mu_;
  std::map<std::string, v1::DataSetInfo> infos_ ABSL_GUARDED_BY(mu_);
};

// A stored data set as the model's inputs (matched by name, as LoadDataSet
// does for .npz files); errors name the data set and the tensor.
absl::StatusOr<compression::DataSet> ToDataSet(const v1::StoredDataSet& data, const runtime::Graph& graph);

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_DATASET_STORE_H_
