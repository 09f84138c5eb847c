// The compression service's core: jobs that build compressed variants of
// served models in background workers, the variant cache they fill, the
// data sets they calibrate and evaluate on, and the variants' publication
// (served as "<model>.<variant>", promoted behind the bare name).
//
// A job: load the original -> calibrate/quantize (compression/pipeline.h)
// -> evaluate against the original -> store in the cache -> load the variant
// as a model, measure its latency as served -> publish. Workers run under
// SCHED_IDLE with fewer threads than serving, and while requests are being
// answered they compute only `busy_share` of the time; the
// variant's serving threads are started by a publisher thread at normal
// priority. Job records are files, so after a restart an interrupted job is
// reported failed, and finished variants come back from the cache when
// their model loads. Thread-safe.
//
//   ASSIGN_OR_RETURN(auto compressor, Compressor::Create(options, models, metrics));
//   ASSIGN_OR_RETURN(v1::Job job, compressor->CreateVariant(request));
#ifndef SLIMSERVE_SERVER_CORE_COMPRESSOR_H_
#define SLIMSERVE_SERVER_CORE_COMPRESSOR_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "compression/profile.h"
#include "proto/compression.pb.h"
#include "server/core/dataset_store.h"
#include "server/core/metrics.h"
#include "server/core/model_manager.h"
#include "server/core/variant_cache.h"

namespace slimserve::server {

struct CompressorOptions {
  std::string state_dir;  // holds variants/, datasets/ and jobs/
  int workers = 1;
  int threads = 1;        // intra-op threads of a job (serving has its own)
  // While the server answers requests, the share of time a job computes:
  // after each piece of work it sleeps in proportion. Any CPU a job takes
  // shows in serving's tail latency on a busy machine (bench/compression_load.sh).
  double busy_share = 0.1;
  int max_queued_jobs = 16;
  int64_t cache_bytes = int64_t{4} << 30;
  int64_t max_dataset_bytes = int64_t{1} << 30;
  int64_t evaluation_rows = 2000;  // at most, per evaluation
};

class Compressor {
 public:
  static absl::StatusOr<std::unique_ptr<Compressor>> Create(const CompressorOptions& options, ModelManager& models,
                                                            MetricsSink* metrics);
  ~Compressor();  // cancels the jobs under way and waits for the workers

  // Queues a job, or answers from the cache (a SUCCEEDED job with cache_hit).
  absl::StatusOr<v1::Job> CreateVariant(const v1::CreateVariantRequest& request);
  absl::StatusOr<v1::Job> GetJob(const std::string& id) const;
  // Calls `on_change` with the job now and after every change until the job
  // ends, or `on_change` returns false.
  absl::Status WatchJob(const std::string& id, const std::function<bool(const v1::Job&)>& on_change);
  absl::StatusOr<v1::Job> CancelJob(const std::string& id);
  std::vector<v1::Job> Jobs(const std::string& model) const;

  std::vector<v1::Variant> Variants(const std::string& model) const;
  absl::Status DeleteVariant(const std::string& model, const std::string& variant);
  absl::StatusOr<v1::Variant> Promote(const v1::PromoteVariantRequest& request);
  // The variant's ONNX file in the cache, its checksum verified.
  absl::StatusOr<std::string> VariantFile(const std::string& model, const std::string& variant);

  DataSetStore& datasets() { return datasets_; }
  int64_t max_dataset_bytes() const { return options_.max_dataset_bytes; }

 private:
  struct JobState;

  Compressor(const CompressorOptions& options, ModelManager& models, MetricsSink* metrics);
  void LoadJobRecords();
  // Serves the cached variants of `model` that were built from its current
  // file, and stops serving (and demotes) those built from another.
  void RestoreVariants(const std::string& model);
  void WorkerLoop();
  void PublisherLoop();
  // Runs `work` on the publisher thread and waits for it.
  absl::Status OnPublisher(std::function<absl::Status()> work);
  absl::Status Run(JobState& state);
  // Between pieces of a job's work: sleeps while serving is busy (busy_share).
  void Yield(JobState& state);
  // Loads a cached variant as a served model.
  absl::Status Serve(const v1::Variant& record, const std::string& onnx_path);
  // Applies `change` to the job, wakes watchers, and writes the record when
  // its state or stage changed.
  void Update(JobState& state, const std::function<void(v1::Job&)>& change);
  absl::StatusOr<v1::Variant> FindVariant(const std::string& model, const std::string& variant) const;

  const CompressorOptions options_;
  ModelManager& models_;
  MetricsSink* const metrics_;
  VariantCache cache_;
  DataSetStore datasets_;

  mutable std::mutex mu_;
  std::condition_variable changed_;  // a job changed, or the queue did, or stopping
  std::map<std::string, std::shared_ptr<JobState>> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<JobState>> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> publish_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
  std::thread publisher_;
};

// Between the proto message and compression's value type.
absl::StatusOr<compression::Profile> ProfileFromProto(const v1::Profile& proto);
v1::Profile ProfileToProto(const compression::Profile& profile);

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_COMPRESSOR_H_
