#include "server/core/model.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/status_macros.h"
#include "server/core/config.h"

namespace slimserve::server {
namespace {

using Clock = std::chrono::steady_clock;
using runtime::Shape;
using runtime::Tensor;

// How long an instance waits for the next request before letting its
// kernels' worker threads sleep (Executor::Rest). Fashion-MNIST at
// concurrency 1 (requests ~0.2 ms apart), p50: 0.34 ms with this grace,
// 0.42 ms resting at once (each request wakes the workers), 0.43 ms never
// resting (an XNNPACK worker spinning between requests takes a core from
// the gRPC threads).
constexpr std::chrono::microseconds kRestAfter{1000};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string ShapeText(const Shape& shape) { return absl::StrCat("[", absl::StrJoin(shape, ","), "]"); }

// The full shape an input may have: config dims, with the batch dimension
// (-1) in front when batching.
Shape AllowedShape(const inference::ModelInput& input, bool batching) {
  Shape shape;
  if (batching) shape.push_back(-1);
  shape.insert(shape.end(), input.dims().begin(), input.dims().end());
  return shape;
}

// Inputs for the warm-up runs at `batch` rows (dynamic dims other than the
// batch: 1): uniform [0, 1) for floats, zeros otherwise. Plans are chosen by
// timing these runs, and all-zero data runs faster than real data on this CPU.
absl::StatusOr<std::vector<Tensor>> WarmupInputs(const inference::ModelConfig& config, int64_t batch) {
  std::vector<Tensor> inputs;
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (const auto& input : config.input()) {
    Shape shape = AllowedShape(input, config.max_batch_size() > 0);
    for (auto& d : shape) d = d < 0 ? 1 : d;
    if (config.max_batch_size() > 0) shape[0] = batch;
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(*FromConfigDataType(input.data_type()), shape));
    if (t.dtype() == runtime::DataType::kFloat32) {
      for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = uniform(rng);
    }
    inputs.push_back(std::move(t));
  }
  return inputs;
}

// The same shapes apart from the first dimension: requests that can share a batch.
bool SameRowShapes(const InferRequest& a, const InferRequest& b) {
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const Shape& x = a.inputs[i].shape();
    const Shape& y = b.inputs[i].shape();
    if (x.size() != y.size() || !std::equal(x.begin() + 1, x.end(), y.begin() + 1)) return false;
  }
  return true;
}

}  // namespace

Model::Model(ModelSource source, const ModelOptions& options, MetricsSink* metrics)
    : name_(source.name),
      version_(source.version),
      version_text_(absl::StrCat(source.version)),
      config_(std::move(source.config)),
      source_path_(source.stored_path.empty() ? source.onnx_path : source.stored_path),
      metrics_(metrics),
      traffic_(options.traffic_sample_bytes) {}

absl::StatusOr<std::shared_ptr<Model>> Model::Load(ModelSource source, const ModelOptions& options,
                                                   MetricsSink* metrics) {
  const auto start = Clock::now();
  runtime::ImportOptions import;
  import.max_model_bytes = options.max_model_bytes;
  const std::string path = source.onnx_path;
  absl::StatusOr<runtime::Graph> graph = runtime::ImportOnnxFile(path, import);
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat("model '", source.name, "' version ", source.version, ": ", graph.status().message()));
  }
  RETURN_IF_ERROR(CompleteConfig(*graph, source.config));
  source.config.set_name(source.name);
  std::shared_ptr<Model> model(new Model(std::move(source), options, metrics));
  ASSIGN_OR_RETURN(model->backends_, runtime::MakeBackends(options.backend, options.intra_op_threads));
  RETURN_IF_ERROR(runtime::Optimize(*graph, {}));
  runtime::ExecutorOptions executor_options;
  executor_options.num_threads = options.intra_op_threads;
  executor_options.backends = model->backends_.pointers();
  ASSIGN_OR_RETURN(model->executor_, runtime::Executor::Create(*std::move(graph), executor_options));

  const inference::ModelConfig& config = model->config_;
  model->batching_ = config.max_batch_size() > 0 && config.has_dynamic_batching();
  model->max_delay_ = std::chrono::microseconds(config.dynamic_batching().max_queue_delay_microseconds());
  int instances = 0;
  for (const auto& group : config.instance_group()) instances += group.count();
  for (int i = 0; i < std::max(instances, 1); ++i) {
    model->instances_.emplace_back([m = model.get()] { m->InstanceLoop(); });
  }
  // Warm-up builds the plans of every padded batch size before the model is
  // ready. It goes through the queue like any request, so that only instance
  // threads ever run kernels (see the class comment).
  std::set<int64_t> warm_batches = {1};
  for (int64_t rows = 2; rows < 2 * config.max_batch_size(); rows *= 2) warm_batches.insert(model->PlanRows(rows));
  for (int64_t batch : warm_batches) {
    InferRequest warm_up;
    ASSIGN_OR_RETURN(warm_up.inputs, WarmupInputs(config, batch));
    absl::StatusOr<InferResult> out = model->Infer(std::move(warm_up));
    if (!out.ok()) {
      return absl::Status(out.status().code(), absl::StrCat("warm-up of model '", model->name_, "' at batch ",
                                                            batch, " failed: ", out.status().message()));
    }
  }
  model->warm_ = true;
  metrics->Loaded(model->name_, model->version_text_, Seconds(Clock::now() - start));
  return model;
}

absl::StatusOr<std::vector<Tensor>> Model::ArrangeInputs(std::vector<std::pair<std::string, Tensor>> inputs) const {
  const bool batching = config_.max_batch_size() > 0;
  std::vector<Tensor> arranged(config_.input_size());
  std::vector<bool> given(config_.input_size(), false);
  for (auto& [name, tensor] : inputs) {
    int index = -1;
    for (int i = 0; i < config_.input_size(); ++i) {
      if (config_.input(i).name() == name) index = i;
    }
    if (index < 0) {
      std::vector<std::string> names;
      for (const auto& in : config_.input()) names.push_back(in.name());
      return absl::InvalidArgumentError(absl::StrCat("model '", name_, "' has no input '", name,
                                                     "'; its inputs are: ", absl::StrJoin(names, ", ")));
    }
    if (given[index]) return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is given twice"));
    given[index] = true;
    const inference::ModelInput& spec = config_.input(index);
    const runtime::DataType dtype = *FromConfigDataType(spec.data_type());
    if (tensor.dtype() != dtype) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has datatype ", WireDataType(tensor.dtype()),
                                                     " but model '", name_, "' expects ", WireDataType(dtype)));
    }
    const Shape allowed = AllowedShape(spec, batching);
    bool fits = tensor.shape().size() == allowed.size();
    for (size_t d = 0; fits && d < allowed.size(); ++d) fits = allowed[d] < 0 || allowed[d] == tensor.shape()[d];
    if (!fits) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has shape ", ShapeText(tensor.shape()),
                                                     " but model '", name_, "' expects ", ShapeText(allowed),
                                                     " (-1: any size)"));
    }
    if (batching && (tensor.shape()[0] < 1 || tensor.shape()[0] > config_.max_batch_size())) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' has batch size ", tensor.shape()[0],
                                                     "; model '", name_, "' takes 1 to ", config_.max_batch_size()));
    }
    arranged[index] = std::move(tensor);
  }
  for (int i = 0; i < config_.input_size(); ++i) {
    if (!given[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", config_.input(i).name(), "' of model '", name_, "' is missing"));
    }
  }
  if (batching) {
    for (const Tensor& t : arranged) {
      if (t.shape()[0] != arranged[0].shape()[0]) {
        return absl::InvalidArgumentError("inputs have different batch sizes (first dimensions)");
      }
    }
  }
  return arranged;
}

int64_t Model::Rows(const InferRequest& request) const {
  return config_.max_batch_size() > 0 && !request.inputs.empty() ? request.inputs[0].shape()[0] : 1;
}

absl::StatusOr<int> Model::OutputIndex(const std::string& name) const {
  std::vector<std::string> names;
  for (int i = 0; i < config_.output_size(); ++i) {
    if (config_.output(i).name() == name) return i;
    names.push_back(config_.output(i).name());
  }
  return absl::InvalidArgumentError(absl::StrCat("model '", name_, "' has no output '", name,
                                                 "'; its outputs are: ", absl::StrJoin(names, ", ")));
}

Model::~Model() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : instances_) t.join();
}

void Model::Submit(InferRequest request, Done done) {
  auto mine = std::make_shared<Pending>();
  mine->rows = Rows(request);
  mine->request = std::move(request);
  mine->enqueued = Clock::now();
  mine->done = std::move(done);
  std::unique_lock<std::mutex> lock(mu_);
  const uint32_t limit = config_.dynamic_batching().default_queue_policy().max_queue_size();
  if (limit > 0 && queue_.size() >= limit) {
    const size_t queued = queue_.size();
    lock.unlock();
    mine->done(absl::ResourceExhaustedError(
        absl::StrCat("model '", name_, "' has ", queued, " requests queued, its max_queue_size; retry later")));
    return;
  }
  queue_.push_back(std::move(mine));
  metrics_->Pending(name_, version_text_, static_cast<int64_t>(queue_.size()));
  wake_.notify_all();  // an idle instance, or one forming a batch that may take this request
}

absl::StatusOr<InferResult> Model::Infer(InferRequest request) {
  // Shared: the instance thread may still be inside set_value when get returns.
  auto result = std::make_shared<std::promise<absl::StatusOr<InferResult>>>();
  Submit(std::move(request), [result](absl::StatusOr<InferResult> r) { result->set_value(std::move(r)); });
  return result->get_future().get();
}

void Model::InstanceLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto woken = [&] { return stopping_ || !queue_.empty(); };
    if (!woken() && !wake_.wait_for(lock, kRestAfter, woken)) {
      // Idle: the kernels' worker threads sleep until the next request
      // rather than spin for milliseconds on a core others could use.
      lock.unlock();
      executor_->Rest();
      lock.lock();
    }
    wake_.wait(lock, woken);
    if (queue_.empty()) return;  // stopping, and nothing left to serve
    Batch batch = NextBatch(lock);
    if (batch.empty()) continue;  // another instance took the requests
    metrics_->Pending(name_, version_text_, static_cast<int64_t>(queue_.size()));
    RunBatch(batch, lock);
  }
}

// Takes the next batch off the queue: without dynamic batching, one request;
// with it, requests whose shapes match the first one's, until max_batch_size
// rows or a preferred batch size is reached or the first request has waited
// max_queue_delay. Empty if other instances emptied the queue meanwhile.
Model::Batch Model::NextBatch(std::unique_lock<std::mutex>& lock) {
  Batch batch;
  if (!batching_) {
    batch.push_back(queue_.front());
    queue_.pop_front();
    return batch;
  }
  const int64_t max_rows = config_.max_batch_size();
  const auto& preferred = config_.dynamic_batching().preferred_batch_size();
  auto ready_rows = [&] {
    int64_t rows = 0;
    for (const auto& p : queue_) {
      if (!SameRowShapes(p->request, queue_.front()->request) || rows + p->rows > max_rows) continue;
      rows += p->rows;
    }
    return rows;
  };
  const auto deadline = queue_.front()->enqueued + max_delay_;
  // Another instance may take the queue while this one waits.
  while (!stopping_ && !queue_.empty()) {
    const int64_t rows = ready_rows();
    if (rows >= max_rows || std::find(preferred.begin(), preferred.end(), rows) != preferred.end()) break;
    // (An expired deadline is checked here: waiting on one still sleeps ~90 us.)
    if (Clock::now() >= deadline || wake_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  if (queue_.empty()) return batch;
  int64_t rows = 0;
  const InferRequest& first = queue_.front()->request;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it != queue_.begin() && (!SameRowShapes((*it)->request, first) || rows + (*it)->rows > max_rows)) {
      ++it;
      continue;
    }
    rows += (*it)->rows;
    batch.push_back(*it);
    it = queue_.erase(it);
  }
  return batch;
}

int64_t Model::PlanRows(int64_t rows) const {
  if (config_.max_batch_size() <= 0) return rows;
  int64_t padded = 1;
  while (padded < rows) padded *= 2;
  return std::min<int64_t>(padded, config_.max_batch_size());
}

absl::StatusOr<std::vector<Tensor>> Model::RunRows(const Batch& batch, int64_t rows) {
  const int64_t plan_rows = PlanRows(rows);
  if (batch.size() == 1 && plan_rows == rows) return executor_->Run(batch[0]->request.inputs);
  std::vector<Tensor> inputs;  // the requests' rows, then zeros up to plan_rows
  for (size_t i = 0; i < batch[0]->request.inputs.size(); ++i) {
    Shape shape = batch[0]->request.inputs[i].shape();
    shape[0] = plan_rows;
    ASSIGN_OR_RETURN(Tensor joined, Tensor::Allocate(batch[0]->request.inputs[i].dtype(), shape));
    char* dst = static_cast<char*>(joined.raw_data());
    for (const auto& p : batch) {
      const Tensor& part = p->request.inputs[i];
      std::memcpy(dst, part.raw_data(), part.byte_size());
      dst += part.byte_size();
    }
    inputs.push_back(std::move(joined));
  }
  return executor_->Run(inputs);
}

absl::StatusOr<InferResult> Model::Slice(const Pending& p, const std::vector<Tensor>& outputs, int64_t row,
                                          int64_t rows) const {
  InferResult result;
  result.batch_size = rows;
  const int64_t plan_rows = PlanRows(rows);
  for (int index : p.request.outputs) {
    const Tensor& out = outputs[index];
    if (plan_rows == p.rows) {  // the whole run was this request's: no copy
      result.outputs.push_back(out);
      continue;
    }
    if (out.rank() == 0 || out.shape()[0] != plan_rows) {
      return absl::InternalError(absl::StrCat("output '", config_.output(index).name(),
                                              "' does not have the batch as its first dimension"));
    }
    Shape shape = out.shape();
    shape[0] = p.rows;
    ASSIGN_OR_RETURN(Tensor part, Tensor::Allocate(out.dtype(), shape));
    const size_t row_bytes = out.byte_size() / plan_rows;
    std::memcpy(part.raw_data(), static_cast<const char*>(out.raw_data()) + row * row_bytes, part.byte_size());
    result.outputs.push_back(std::move(part));
  }
  return result;
}

void Model::RunBatch(const Batch& batch, std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  const auto start = Clock::now();
  int64_t rows = 0;
  for (const auto& p : batch) rows += p->rows;
  absl::StatusOr<std::vector<Tensor>> outputs = RunRows(batch, rows);
  const uint64_t compute_ns = static_cast<uint64_t>(Seconds(Clock::now() - start) * 1e9);
  if (warm_) {
    ++execution_count_;
    metrics_->Batch(name_, version_text_, rows);
    std::lock_guard<std::mutex> stats_lock(batch_stats_mu_);
    auto& [count, ns] = batch_stats_[rows];
    ++count;
    ns += compute_ns;
  }
  int64_t row = 0;
  for (const auto& p : batch) {
    absl::StatusOr<InferResult> result = outputs.ok() ? Slice(*p, *outputs, row, rows) : outputs.status();
    if (result.ok()) {
      result->times.queue = Seconds(start - p->enqueued);
      result->times.compute = compute_ns * 1e-9;
    }
    p->done(std::move(result));
    row += p->rows;
  }
  lock.lock();
}

void Model::RecordRequest(const absl::Status& status, const RequestTimes& times, int64_t rows) {
  std::string reason;
  if (status.ok()) {
    success_.Add(times.total);
    queue_time_.Add(times.queue);
    compute_.Add(times.compute);
    inference_count_ += rows;
    last_inference_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  } else {
    fail_.Add(times.total);
    reason = absl::StatusCodeToString(status.code());
  }
  metrics_->Request(name_, version_text_, reason, times, rows);
}

void Model::FillStatistics(inference::ModelStatistics& stats) const {
  auto fill = [](const Duration& d, inference::StatisticDuration* out) {
    out->set_count(d.count);
    out->set_ns(d.ns);
  };
  stats.set_name(name_);
  stats.set_version(version_text_);
  stats.set_last_inference(last_inference_ms_);
  stats.set_inference_count(inference_count_);
  stats.set_execution_count(execution_count_);
  inference::InferStatistics* s = stats.mutable_inference_stats();
  fill(success_, s->mutable_success());
  fill(fail_, s->mutable_fail());
  fill(queue_time_, s->mutable_queue());
  fill(compute_, s->mutable_compute_infer());
  std::lock_guard<std::mutex> lock(batch_stats_mu_);
  for (const auto& [size, counts] : batch_stats_) {
    inference::InferBatchStatistics* b = stats.add_batch_stats();
    b->set_batch_size(size);
    b->mutable_compute_infer()->set_count(counts.first);
    b->mutable_compute_infer()->set_ns(counts.second);
  }
}

}  // namespace slimserve::server
