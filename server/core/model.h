// One loaded version of a model: the ONNX graph optimized and compiled by the
// runtime, its completed config, a dynamic batcher feeding instance threads,
// and its statistics.
//
// Requests hold a std::shared_ptr<Model>; a model that is unloaded or replaced
// keeps serving the requests it has accepted and stops its instance threads
// when the last holder lets go (the destructor drains the queue).
//
// Each instance (instance_group count) is a thread that takes the next batch
// off the queue and runs it; only instance threads run kernels, warm-up
// included. GNU OpenMP gives every thread that starts parallel work a team of
// its own, and once its threads outnumber the cores it spins 10-20x less
// before sleeping: kernels run on ever-changing request threads (or the
// loading thread) made ResNet-18 at batch 1 take 12.6 ms instead of 9.4 ms,
// with 83 context switches per run instead of 3.
//
//   ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Model::Load(source, options, metrics));
//   model->Submit(std::move(request), [](absl::StatusOr<InferResult> result) { ... });
#ifndef SLIMSERVE_SERVER_CORE_MODEL_H_
#define SLIMSERVE_SERVER_CORE_MODEL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/grpc_service.pb.h"
#include "proto/model_config.pb.h"
#include "runtime/backends.h"
#include "runtime/executor.h"
#include "runtime/tensor.h"
#include "server/core/metrics.h"
#include "server/core/reservoir.h"

namespace slimserve::server {

struct ModelOptions {
  int intra_op_threads = 0;  // per instance; 0: one per core
  std::string backend = "auto";
  int64_t max_model_bytes = int64_t{1} << 30;
  int64_t traffic_sample_bytes = 0;  // the reservoir of request inputs (SampleTraffic); 0: none
};

struct ModelSource {
  std::string name;
  int64_t version = 1;
  std::string onnx_path;
  // Where the file stays once loaded, if not onnx_path: an upload is loaded
  // from its staging folder, then moved into the repository.
  std::string stored_path;
  inference::ModelConfig config;  // as read; Load completes it from the model
};

struct InferRequest {
  std::vector<runtime::Tensor> inputs;  // in the order of config().input()
  std::vector<int> outputs;             // indices into config().output(), in reply order
};

struct InferResult {
  std::vector<runtime::Tensor> outputs;  // as requested
  int64_t batch_size = 0;                // rows of the batch this request ran in
  RequestTimes times;                    // queue and compute (total is the caller's)
};

class Model {
 public:
  // Reads, optimizes and compiles the model, completes its config, starts its
  // instances and runs one warm-up batch (at batch 1 and the max batch) so the
  // first request finds its plans built.
  static absl::StatusOr<std::shared_ptr<Model>> Load(ModelSource source, const ModelOptions& options,
                                                     MetricsSink* metrics);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const std::string& version_text() const { return version_text_; }
  const inference::ModelConfig& config() const { return config_; }
  // The ONNX file it was loaded from (where it is now).
  const std::string& source_path() const { return source_path_; }

  // Offers a request's inputs (in config order) to the reservoir that
  // calibrates compressed variants on live traffic; cheap when not kept.
  void SampleTraffic(const std::vector<runtime::Tensor>& inputs) {
    traffic_.Offer(inputs, config_.max_batch_size() > 0);
  }
  const Reservoir& traffic() const { return traffic_; }

  // Checks inputs against the config (every input present once, no others,
  // dtype and shape, batch size within max_batch_size) and puts them in
  // config order. `inputs` are (name, tensor) in any order.
  absl::StatusOr<std::vector<runtime::Tensor>> ArrangeInputs(
      std::vector<std::pair<std::string, runtime::Tensor>> inputs) const;
  // Inferences in `request`: its batch size when the model batches, else 1.
  int64_t Rows(const InferRequest& request) const;
  // Index of output `name` in config().output(), or NotFound naming the outputs.
  absl::StatusOr<int> OutputIndex(const std::string& name) const;

  // Queues the request for the batcher; `done` gets its result on the
  // instance thread that ran it, right after the run (so a reply can be sent
  // from there without waking another thread), or at once on this thread with
  // ResourceExhausted when the queue is full.
  using Done = std::function<void(absl::StatusOr<InferResult>)>;
  void Submit(InferRequest request, Done done);
  // Submit, then waits for the result.
  absl::StatusOr<InferResult> Infer(InferRequest request);

  // Counts a finished request of `rows` inferences (the caller measured
  // `total`) in the statistics and the metrics.
  void RecordRequest(const absl::Status& status, const RequestTimes& times, int64_t rows);
  void FillStatistics(inference::ModelStatistics& stats) const;
  // When the last request finished successfully (ms since the Unix epoch; 0: never).
  uint64_t last_inference_ms() const { return last_inference_ms_; }

 private:
  struct Pending {
    InferRequest request;
    int64_t rows = 1;
    std::chrono::steady_clock::time_point enqueued;
    Done done;
  };
  using Batch = std::vector<std::shared_ptr<Pending>>;

  Model(ModelSource source, const ModelOptions& options, MetricsSink* metrics);
  void InstanceLoop();
  Batch NextBatch(std::unique_lock<std::mutex>& lock);
  // Runs `batch` without the lock and hands each request its result.
  void RunBatch(const Batch& batch, std::unique_lock<std::mutex>& lock);
  // Runs are padded with zero rows to a power of two (at most max_batch_size),
  // so a handful of plans, all built at load, serve every batch size.
  int64_t PlanRows(int64_t rows) const;
  absl::StatusOr<std::vector<runtime::Tensor>> RunRows(const Batch& batch, int64_t rows);
  // `p`'s requested outputs: its rows [row, row + p.rows) of the batch's.
  absl::StatusOr<InferResult> Slice(const Pending& p, const std::vector<runtime::Tensor>& outputs, int64_t row,
                                    int64_t rows) const;

  const std::string name_;
  const int64_t version_;
  const std::string version_text_;
  inference::ModelConfig config_;
  const std::string source_path_;
  MetricsSink* const metrics_;
  Reservoir traffic_;
  runtime::BackendSet backends_;
  std::unique_ptr<runtime::Executor> executor_;
  bool batching_ = false;  // dynamic batching of several requests into one run
  std::chrono::microseconds max_delay_{0};

  std::mutex mu_;
  std::condition_variable wake_;  // a request arrived, or the model is stopping
  std::deque<std::shared_ptr<Pending>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> instances_;
  std::atomic<bool> warm_{false};  // warm-up done: batches count in the statistics

  // Statistics (ModelStatistics); durations in ns.
  struct Duration {
    std::atomic<uint64_t> count{0}, ns{0};
    void Add(double seconds) {
      ++count;
      ns += static_cast<uint64_t>(seconds * 1e9);
    }
  };
  Duration success_, fail_, queue_time_, compute_;
  std::atomic<uint64_t> inference_count_{0}, execution_count_{0}, last_inference_ms_{0};  // inferences: rows
  mutable std::mutex batch_stats_mu_;
  std::map<int64_t, std::pair<uint64_t, uint64_t>> batch_stats_;  // size -> (count, compute ns)
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_MODEL_H_
