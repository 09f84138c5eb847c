#include "server/core/compressor.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "compression/evaluate.h"
#include "compression/pipeline.h"
#include "runtime/onnx_export.h"
#include "runtime/onnx_import.h"
#include "runtime/status_macros.h"
#include "server/core/storage.h"

namespace slimserve::server {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using runtime::Tensor;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Ended(const v1::Job& job) {
  return job.state() == v1::Job::SUCCEEDED || job.state() == v1::Job::FAILED || job.state() == v1::Job::CANCELLED;
}

absl::Status CheckVariantName(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("variant name '", name, "': use 1 to 64 letters, digits, '_' or '-'"));
}

// The latest loaded version of `model` (not a promoted variant).
absl::StatusOr<std::shared_ptr<Model>> Original(const ModelManager& models, const std::string& model) {
  const std::vector<std::string> versions = models.Versions(model);
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' is not loaded; load it before compressing it"));
  }
  return models.Get(model, versions.back());
}

// Requests to `model` may have gone to its promoted variant: both samples count.
std::vector<std::shared_ptr<Model>> Served(const ModelManager& models, const std::string& model) {
  std::vector<std::shared_ptr<Model>> served;
  for (std::shared_ptr<Model>& m : models.Loaded("")) {
    if (m->name() == model || m->name().rfind(model + ".", 0) == 0) served.push_back(std::move(m));
  }
  return served;
}

int64_t TrafficSeen(const ModelManager& models, const std::string& model) {
  int64_t seen = 0;
  for (const auto& m : Served(models, model)) seen += m->traffic().seen();
  return seen;
}

// The traffic samples' rows (those shaped like the first) as a data set.
absl::StatusOr<compression::DataSet> TrafficData(const ModelManager& models, const Model& model,
                                                 const runtime::Graph& graph) {
  std::vector<std::vector<Tensor>> rows;
  for (const auto& m : Served(models, model.name())) {
    for (auto& row : m->traffic().Rows()) rows.push_back(std::move(row));
  }
  if (rows.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", model.name(), "' has served no requests to calibrate or evaluate on yet; send it traffic, or "
        "upload a data set and name it (data=NAME, evaluation_data)"));
  }
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [&](const auto& r) {
                              for (size_t i = 0; i < r.size(); ++i) {
                                if (r[i].shape() != rows[0][i].shape()) return true;
                              }
                              return false;
                            }),
             rows.end());
  std::vector<std::pair<std::string, Tensor>> arrays;
  for (size_t i = 0; i < rows[0].size(); ++i) {
    runtime::Shape shape = rows[0][i].shape();
    shape[0] = static_cast<int64_t>(rows.size());
    ASSIGN_OR_RETURN(Tensor stacked, Tensor::Allocate(rows[0][i].dtype(), shape));
    const size_t row_bytes = rows[0][i].byte_size();
    for (size_t r = 0; r < rows.size(); ++r) {
      std::memcpy(static_cast<char*>(stacked.raw_data()) + r * row_bytes, rows[r][i].raw_data(), row_bytes);
    }
    arrays.emplace_back(model.config().input(static_cast<int>(i)).name(), std::move(stacked));
  }
  return compression::MakeDataSet(std::move(arrays), graph, absl::StrCat("the traffic sample of '", model.name(), "'"));
}

// Rows [begin, end) of `data`, without labels.
compression::DataSet RowsFrom(const compression::DataSet& data, int64_t begin) {
  compression::DataSet part;
  const auto batches = data.Batches(begin, data.rows() - begin, data.rows());
  if (!batches.empty()) part.inputs = batches[0];
  return part;
}

// A job's calibration and evaluation rows, as the model's inputs.
struct JobData {
  compression::DataSet calibration, evaluation;
  std::string evaluated_on;  // for the job's message
};

// Calibration from the profile's data set or the traffic sample (int8-static
// only); evaluation on the named data set, or on the traffic rows that
// calibration did not use (all of them if it used them all).
absl::StatusOr<JobData> LoadJobData(const ModelManager& models, const DataSetStore& datasets, const Model& original,
                                    const runtime::Graph& graph, const compression::Profile& profile,
                                    const std::string& evaluation_data) {
  JobData data;
  const bool from_traffic = compression::UsesCalibration(profile) && profile.data == "traffic";
  if (from_traffic) {
    ASSIGN_OR_RETURN(data.calibration, TrafficData(models, original, graph));
  } else if (compression::UsesCalibration(profile)) {
    ASSIGN_OR_RETURN(v1::StoredDataSet stored, datasets.Get(profile.data));
    ASSIGN_OR_RETURN(data.calibration, ToDataSet(stored, graph));
  }
  if (!evaluation_data.empty()) {
    ASSIGN_OR_RETURN(v1::StoredDataSet stored, datasets.Get(evaluation_data));
    ASSIGN_OR_RETURN(data.evaluation, ToDataSet(stored, graph));
    data.evaluated_on = absl::StrCat("data set '", evaluation_data, "'");
    return data;
  }
  compression::DataSet traffic = data.calibration;
  if (!from_traffic) {
    ASSIGN_OR_RETURN(traffic, TrafficData(models, original, graph));
  }
  const bool held_out = from_traffic && traffic.rows() > profile.samples;
  data.evaluation = held_out ? RowsFrom(traffic, profile.samples) : traffic;
  data.evaluated_on = absl::StrCat(data.evaluation.rows(), held_out ? " held-out rows" : " rows", " of the traffic sample");
  return data;
}

struct Speed {
  double p50_ms = 0, p99_ms = 0, throughput = 0;
};

// Latency at batch 1 and throughput at the max batch, as served, of a
// variant and its original: per batch size, two rounds of a quarter second
// (and at least 5 runs) of each model in turn, after 3 untimed runs, with a
// pause between them for the threads of the model that ran to stop spinning
// (Backend::Rest), so they do not slow the other one.
absl::StatusOr<std::pair<Speed, Speed>> MeasureSpeeds(Model& variant, Model& original,
                                                      const compression::DataSet& data) {
  const int64_t max_batch = std::max<int64_t>(1, std::min<int64_t>(original.config().max_batch_size(), data.rows()));
  Speed speed[2];
  for (const int64_t rows : {int64_t{1}, max_batch}) {
    const auto batches = data.Batches(0, rows, rows);
    std::vector<double> ms[2];
    for (int round = 0; round < 2; ++round) {
      for (int m = 0; m < 2; ++m) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(250);
        for (int run = 0; run < 8 || (run < 2000 && Clock::now() < deadline); ++run) {
          InferRequest request;
          request.inputs = batches[0];
          request.outputs = {0};
          const auto start = Clock::now();
          RETURN_IF_ERROR((m == 0 ? variant : original).Infer(std::move(request)).status());
          if (run >= 3) ms[m].push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    for (int m = 0; m < 2; ++m) {
      std::sort(ms[m].begin(), ms[m].end());
      const double p50 = ms[m][ms[m].size() / 2];
      if (rows == 1) {
        speed[m].p50_ms = p50;
        speed[m].p99_ms = ms[m][std::min(ms[m].size() - 1, ms[m].size() * 99 / 100)];
      }
      speed[m].throughput = 1000.0 * rows / p50;  // at batch 1 until the max batch has run
    }
  }
  return std::make_pair(speed[0], speed[1]);
}

}  // namespace

struct Compressor::JobState {
  v1::Job job;
  std::atomic<bool> cancel{false};
  Clock::time_point working_since = Clock::now();  // the current piece of work began
  std::string model_sha256, data_sha256, cache_key;
  compression::Profile profile;
};

absl::StatusOr<compression::Profile> ProfileFromProto(const v1::Profile& proto) {
  compression::Profile p;
  switch (proto.kind()) {
    case v1::Profile::FP32: p.kind = compression::ProfileKind::kFp32; break;
    case v1::Profile::BF16: p.kind = compression::ProfileKind::kBf16; break;
    case v1::Profile::INT8_DYNAMIC: p.kind = compression::ProfileKind::kInt8Dynamic; break;
    case v1::Profile::INT8_STATIC: p.kind = compression::ProfileKind::kInt8Static; break;
    case v1::Profile::PRUNED: p.kind = compression::ProfileKind::kPruned; break;
    case v1::Profile::LOW_RANK: p.kind = compression::ProfileKind::kLowRank; break;
    default:
      return absl::InvalidArgumentError(
          "the profile needs a kind: FP32, BF16, INT8_DYNAMIC, INT8_STATIC, PRUNED or LOW_RANK");
  }
  using S = compression::PruneStructure;
  p.prune.structure = proto.structure() == v1::Profile::WEIGHT   ? S::kWeight
                      : proto.structure() == v1::Profile::VECTOR ? S::kVector
                      : proto.structure() == v1::Profile::KERNEL ? S::kKernel
                                                                 : S::kFilter;
  p.prune.criterion = proto.criterion() == v1::Profile::L2         ? compression::PruneCriterion::kL2
                      : proto.criterion() == v1::Profile::BN_GAMMA ? compression::PruneCriterion::kBnGamma
                                                                   : compression::PruneCriterion::kL1;
  if (proto.sparsity() != 0) p.prune.sparsity = proto.sparsity();
  p.prune.global = proto.global();
  p.prune.sensitivity = proto.sensitivity();
  if (proto.rank_ratio() != 0) p.low_rank.ratio = proto.rank_ratio();
  p.low_rank.energy = proto.energy();
  for (const v1::Profile& step : proto.then()) {
    if (!step.then().empty()) return absl::InvalidArgumentError("a chain's steps are listed in one `then`, not nested");
    ASSIGN_OR_RETURN(compression::Profile next, ProfileFromProto(step));
    p.then.push_back(std::move(next));
  }
  switch (proto.calibration()) {
    case v1::Profile::PERCENTILE: p.calibration = compression::Calibration::kPercentile; break;
    case v1::Profile::ENTROPY: p.calibration = compression::Calibration::kEntropy; break;
    case v1::Profile::MSE: p.calibration = compression::Calibration::kMse; break;
    default: p.calibration = compression::Calibration::kMinMax; break;
  }
  if (proto.percentile() != 0) p.percentile = proto.percentile();
  if (proto.samples() != 0) p.samples = proto.samples();
  p.data = proto.data();
  p.s8_activations = proto.s8_activations();
  p.keep_fp32.assign(proto.keep_fp32().begin(), proto.keep_fp32().end());
  // The text form checks the values (and is what identifies the profile).
  std::string text = compression::ProfileText(p);
  if (p.kind != compression::ProfileKind::kInt8Static && (proto.calibration() != 0 || p.s8_activations)) {
    return absl::InvalidArgumentError("calibration and s8_activations apply to INT8_STATIC profiles only");
  }
  if (!compression::UsesCalibration(p) && !p.data.empty()) {
    return absl::InvalidArgumentError("data applies to INT8_STATIC, PRUNED and LOW_RANK profiles only");
  }
  if (p.kind != compression::ProfileKind::kLowRank && (proto.rank_ratio() != 0 || proto.energy() != 0)) {
    return absl::InvalidArgumentError("rank_ratio and energy apply to LOW_RANK profiles only");
  }
  const bool pruning = proto.structure() != 0 || proto.sparsity() != 0 || proto.criterion() != 0 || proto.global() ||
                       proto.sensitivity();
  if (p.kind != compression::ProfileKind::kPruned && pruning) {
    return absl::InvalidArgumentError(
        "structure, sparsity, criterion, global and sensitivity apply to PRUNED profiles only");
  }
  return compression::ParseProfile(text);
}

v1::Profile ProfileToProto(const compression::Profile& p) {
  v1::Profile proto;
  using K = compression::ProfileKind;
  proto.set_kind(p.kind == K::kFp32 ? v1::Profile::FP32
                 : p.kind == K::kBf16 ? v1::Profile::BF16
                 : p.kind == K::kInt8Dynamic ? v1::Profile::INT8_DYNAMIC
                 : p.kind == K::kPruned      ? v1::Profile::PRUNED
                 : p.kind == K::kLowRank     ? v1::Profile::LOW_RANK
                                             : v1::Profile::INT8_STATIC);
  if (p.kind == K::kPruned) {
    using S = compression::PruneStructure;
    using C = compression::PruneCriterion;
    proto.set_structure(p.prune.structure == S::kWeight   ? v1::Profile::WEIGHT
                        : p.prune.structure == S::kVector ? v1::Profile::VECTOR
                        : p.prune.structure == S::kKernel ? v1::Profile::KERNEL
                                                          : v1::Profile::FILTER);
    proto.set_criterion(p.prune.criterion == C::kL2         ? v1::Profile::L2
                        : p.prune.criterion == C::kBnGamma ? v1::Profile::BN_GAMMA
                                                            : v1::Profile::L1);
    proto.set_sparsity(p.prune.sparsity);
    proto.set_global(p.prune.global);
    proto.set_sensitivity(p.prune.sensitivity);
  }
  if (p.kind == K::kLowRank) {
    proto.set_rank_ratio(p.low_rank.ratio);
    proto.set_energy(p.low_rank.energy);
  }
  if (compression::Restructures(p.kind)) {
    proto.set_samples(p.samples);
    proto.set_data(p.data);
  }
  for (const compression::Profile& step : p.then) *proto.add_then() = ProfileToProto(step);
  if (p.kind == K::kInt8Static) {
    using C = compression::Calibration;
    proto.set_calibration(p.calibration == C::kPercentile ? v1::Profile::PERCENTILE
                          : p.calibration == C::kEntropy  ? v1::Profile::ENTROPY
                          : p.calibration == C::kMse      ? v1::Profile::MSE
                                                          : v1::Profile::MINMAX);
    if (p.calibration == C::kPercentile) proto.set_percentile(p.percentile);
    proto.set_samples(p.samples);
    proto.set_data(p.data);
    proto.set_s8_activations(p.s8_activations);
  }
  for (const std::string& k : p.keep_fp32) proto.add_keep_fp32(k);
  return proto;
}

Compressor::Compressor(const CompressorOptions& options, ModelManager& models, MetricsSink* metrics)
    : options_(options),
      models_(models),
      metrics_(metrics),
      cache_(options.state_dir + "/variants", options.cache_bytes),
      datasets_(options.state_dir + "/datasets") {}

absl::StatusOr<std::unique_ptr<Compressor>> Compressor::Create(const CompressorOptions& options, ModelManager& models,
                                                               MetricsSink* metrics) {
  std::error_code error;
  fs::create_directories(options.state_dir + "/jobs", error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot create the state folder ", options.state_dir, ": ",
                                               error.message(), " (choose another with --state-dir)"));
  }
  std::unique_ptr<Compressor> c(new Compressor(options, models, metrics));
  c->LoadJobRecords();
  // Threads start here, at the caller's priority: the publisher keeps it.
  c->publisher_ = std::thread([p = c.get()] { p->PublisherLoop(); });
  for (int i = 0; i < std::max(options.workers, 1); ++i) c->workers_.emplace_back([p = c.get()] { p->WorkerLoop(); });
  models.SetLoadListener([p = c.get()](const std::string& model) { p->RestoreVariants(model); });
  return c;
}

Compressor::~Compressor() {
  models_.SetLoadListener(nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, state] : jobs_) state->cancel = true;
  }
  changed_.notify_all();
  for (std::thread& t : workers_) t.join();
  publisher_.join();
}

void Compressor::LoadJobRecords() {
  std::error_code error;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& entry : fs::directory_iterator(options_.state_dir + "/jobs", error)) {
    auto state = std::make_shared<JobState>();
    if (entry.path().extension() != ".pb" || !ReadMessage(entry.path().string(), state->job).ok()) continue;
    v1::Job& job = state->job;
    if (!Ended(job)) {
      job.set_message(absl::StrCat("interrupted by a server restart (", job.stage().empty() ? "queued" : job.stage(),
                                   "); create the variant again"));
      job.set_state(v1::Job::FAILED);
      job.set_finished_unix_ms(NowMs());
      (void)WriteMessage(entry.path().string(), job);
    }
    int64_t number = 0;
    if (job.id().size() > 1) number = std::atoll(job.id().c_str() + 1);
    next_id_ = std::max(next_id_, number + 1);
    jobs_[job.id()] = state;
  }
}

void Compressor::Update(JobState& state, const std::function<void(v1::Job&)>& change) {
  std::lock_guard<std::mutex> lock(mu_);
  const v1::Job before = state.job;
  change(state.job);
  if (before.state() != state.job.state() || before.stage() != state.job.stage()) {
    if (Ended(state.job)) state.job.set_finished_unix_ms(NowMs());
    (void)WriteMessage(absl::StrCat(options_.state_dir, "/jobs/", state.job.id(), ".pb"), state.job);
  }
  changed_.notify_all();
}

absl::StatusOr<v1::Job> Compressor::CreateVariant(const v1::CreateVariantRequest& request) {
  ASSIGN_OR_RETURN(std::shared_ptr<Model> original, Original(models_, request.model()));
  auto state = std::make_shared<JobState>();
  ASSIGN_OR_RETURN(state->profile, ProfileFromProto(request.profile()));
  compression::Profile& profile = state->profile;
  const std::string variant =
      request.variant().empty() ? compression::DefaultVariantName(profile) : request.variant();
  RETURN_IF_ERROR(CheckVariantName(variant));
  if (compression::UsesCalibration(profile) && profile.data.empty()) profile.data = "traffic";
  state->data_sha256 = "";
  if (compression::UsesCalibration(profile) && profile.data != "traffic") {
    ASSIGN_OR_RETURN(v1::StoredDataSet data, datasets_.Get(profile.data));
    state->data_sha256 = data.info().sha256();
  }
  if (!request.evaluation_data().empty()) RETURN_IF_ERROR(datasets_.Get(request.evaluation_data()).status());
  const bool needs_traffic = request.evaluation_data().empty() || profile.data == "traffic";
  if (needs_traffic && TrafficSeen(models_, request.model()) == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", request.model(), "' has served no requests to ",
        profile.data == "traffic" ? "calibrate" : "evaluate", " on yet; send it traffic, or upload a data set and "
        "name it (profile data=NAME, evaluation_data=NAME)"));
  }
  ASSIGN_OR_RETURN(const std::string bytes, ReadFile(original->source_path()));
  state->model_sha256 = Sha256Hex(bytes);
  const std::string text = compression::ProfileText(profile);
  state->cache_key = VariantCache::Key(state->model_sha256, absl::StrCat(text, ";variant=", variant), state->data_sha256);

  v1::Job& job = state->job;
  job.set_model(request.model());
  job.set_variant(variant);
  *job.mutable_profile() = ProfileToProto(profile);
  job.set_evaluation_data(request.evaluation_data());
  job.set_created_unix_ms(NowMs());
  job.set_state(v1::Job::QUEUED);

  absl::StatusOr<CachedVariant> cached = cache_.Get(state->cache_key);
  metrics_->CacheLookup(cached.ok());
  if (cached.ok()) {
    if (!models_.ServesVariant(request.model(), variant)) {
      RETURN_IF_ERROR(OnPublisher([&] { return Serve(cached->record, cached->onnx_path); }));
    }
    job.set_state(v1::Job::SUCCEEDED);
    job.set_cache_hit(true);
    job.set_progress(1);
    job.set_message("answered from the variant cache: built before from the same model bytes and profile");
    job.set_finished_unix_ms(NowMs());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!cached.ok()) {
    if (static_cast<int>(queue_.size()) >= options_.max_queued_jobs) {
      return absl::ResourceExhaustedError(absl::StrCat(options_.max_queued_jobs,
                                                       " compression jobs are queued already; retry later"));
    }
    queue_.push_back(state);
  }
  job.set_id(absl::StrFormat("j%06d", next_id_++));
  jobs_[job.id()] = state;
  (void)WriteMessage(absl::StrCat(options_.state_dir, "/jobs/", job.id(), ".pb"), job);
  if (cached.ok()) metrics_->JobEnded("SUCCEEDED");
  changed_.notify_all();
  return job;
}

absl::StatusOr<v1::Job> Compressor::GetJob(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no compression job '", id, "'"));
  return it->second->job;
}

absl::Status Compressor::WatchJob(const std::string& id, const std::function<bool(const v1::Job&)>& on_change) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no compression job '", id, "'"));
  std::shared_ptr<JobState> state = it->second;
  while (true) {
    const v1::Job now = state->job;
    lock.unlock();
    if (!on_change(now) || Ended(now)) return absl::OkStatus();
    lock.lock();
    // Wakes at least every second so a watcher that went away is noticed.
    changed_.wait_for(lock, std::chrono::seconds(1), [&] {
      return stopping_ || state->job.SerializeAsString() != now.SerializeAsString();
    });
    if (stopping_) return absl::UnavailableError("the server is shutting down");
  }
}

absl::StatusOr<v1::Job> Compressor::CancelJob(const std::string& id) {
  std::shared_ptr<JobState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no compression job '", id, "'"));
    state = it->second;
    if (Ended(state->job)) return state->job;
    state->cancel = true;
    auto queued = std::find(queue_.begin(), queue_.end(), state);
    if (queued == queue_.end()) {  // running: the worker stops at its next check
      changed_.notify_all();         // (or now, if it is yielding to serving)
      return state->job;
    }
    queue_.erase(queued);
  }
  Update(*state, [](v1::Job& job) {
    job.set_state(v1::Job::CANCELLED);
    job.set_message("cancelled before it started");
  });
  metrics_->JobEnded("CANCELLED");
  return GetJob(id);
}

std::vector<v1::Job> Compressor::Jobs(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::Job> out;
  for (const auto& [id, state] : jobs_) {
    if (model.empty() || state->job.model() == model) out.push_back(state->job);
  }
  return out;
}

void Compressor::WorkerLoop() {
  // Linux: SCHED_IDLE applies to this thread and the threads it starts (its
  // kernels' thread pools): they run only on a core serving leaves idle, and
  // any serving thread that wakes takes the core back at once. (nice 10 still
  // gave the job ~10 % of a busy core in slices of milliseconds: Fashion-MNIST
  // p99 under load 1.9 -> 4.7 ms.)
  sched_param idle{};
  sched_setscheduler(static_cast<pid_t>(syscall(SYS_gettid)), SCHED_IDLE, &idle);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::shared_ptr<JobState> state = queue_.front();
    queue_.pop_front();
    lock.unlock();
    Update(*state, [](v1::Job& job) { job.set_state(v1::Job::RUNNING); });
    const absl::Status status = Run(*state);
    Update(*state, [&](v1::Job& job) {
      if (status.ok()) {
        job.set_state(v1::Job::SUCCEEDED);
        job.set_progress(1);
        job.set_stage("");
      } else {
        job.set_state(state->cancel ? v1::Job::CANCELLED : v1::Job::FAILED);
        job.set_message(!state->cancel ? std::string(status.message())
                        : stopping_    ? "cancelled by the server's shutdown; create the variant again"
                                       : "cancelled");
      }
    });
    metrics_->JobEnded(v1::Job::State_Name(GetJob(state->job.id())->state()));
    lock.lock();
  }
}

void Compressor::PublisherLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    changed_.wait(lock, [&] { return !publish_.empty() || (stopping_ && publish_.empty()); });
    if (publish_.empty()) return;
    std::function<void()> work = std::move(publish_.front());
    publish_.pop_front();
    lock.unlock();
    work();
    lock.lock();
  }
}

absl::Status Compressor::OnPublisher(std::function<absl::Status()> work) {
  if (std::this_thread::get_id() == publisher_.get_id()) return work();
  auto done = std::make_shared<std::promise<absl::Status>>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("the server is shutting down");
    publish_.push_back([done, work = std::move(work)] { done->set_value(work()); });
  }
  changed_.notify_all();
  return done->get_future().get();
}

absl::Status Compressor::Serve(const v1::Variant& record, const std::string& onnx_path) {
  ASSIGN_OR_RETURN(std::shared_ptr<Model> original, Original(models_, record.model()));
  inference::ModelConfig config = original->config();
  config.set_name(record.served_name());
  ModelSource source{record.served_name(), 1, onnx_path, "", config};
  ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Model::Load(std::move(source), models_.model_options(), metrics_));
  RETURN_IF_ERROR(models_.AddVariant(record.model(), record.variant(), std::move(model)));
  if (record.promoted()) RETURN_IF_ERROR(models_.Promote(record.model(), record.variant()));
  const v1::Measurements& m = record.measurements();
  metrics_->Variant(record.model(), record.variant(),
                    VariantGauges{m.variant_top1(), m.agreement(), m.sqnr_db(), m.size_bytes(), m.p50_ms() / 1000,
                                  m.p99_ms() / 1000, m.throughput()});
  return absl::OkStatus();
}

absl::Status Compressor::Run(JobState& state) {
  const v1::Job job = GetJob(state.job.id()).value();
  auto stage = [&](const char* name, double progress) -> absl::Status {
    if (state.cancel) return absl::CancelledError("cancelled");
    Update(state, [&](v1::Job& j) {
      j.set_stage(name);
      j.set_progress(progress);
    });
    return absl::OkStatus();
  };
  // Progress over [from, to] of the whole job; false (stop) once cancelled.
  auto span = [&](double from, double to) -> compression::Progress {
    return [&state, this, from, to](double done) {
      Update(state, [&](v1::Job& j) { j.set_progress(from + (to - from) * done); });
      Yield(state);
      return !state.cancel.load();
    };
  };

  RETURN_IF_ERROR(stage("loading", 0.0));
  ASSIGN_OR_RETURN(std::shared_ptr<Model> original, Original(models_, job.model()));
  ASSIGN_OR_RETURN(const std::string bytes, ReadFile(original->source_path()));
  if (Sha256Hex(bytes) != state.model_sha256) {
    return absl::AbortedError(absl::StrCat("model '", job.model(), "' was reloaded with other contents; create the variant again"));
  }
  ASSIGN_OR_RETURN(runtime::Graph graph, runtime::ImportOnnxBytes(bytes, fs::path(original->source_path()).parent_path().string(), {}));
  const compression::Profile& profile = state.profile;
  ASSIGN_OR_RETURN(JobData data, LoadJobData(models_, datasets_, *original, graph, profile, job.evaluation_data()));

  // The stage names the chain's step at work.
  auto stage_of = [](const compression::Profile& step) {
    using K = compression::ProfileKind;
    return step.kind == K::kPruned ? "pruning" : step.kind == K::kLowRank ? "factorizing"
                                             : step.kind == K::kInt8Static ? "calibrating"
                                                                           : "quantizing";
  };
  auto starting = [&](const compression::Profile& step) {
    Update(state, [&](v1::Job& j) { j.set_stage(stage_of(step)); });
  };
  RETURN_IF_ERROR(stage(stage_of(profile), 0.05));
  ASSIGN_OR_RETURN(compression::BuiltVariant built,
                   compression::BuildVariant(graph, profile, &data.calibration,
                                             {options_.threads, span(0.05, 0.45), 16, starting}));
  RETURN_IF_ERROR(stage("evaluating", 0.45));
  compression::EvaluateOptions evaluate;
  evaluate.max_rows = options_.evaluation_rows;
  evaluate.batch = 16;  // short pieces of work: Yield runs between them
  evaluate.num_threads = options_.threads;
  evaluate.progress = span(0.45, 0.8);
  ASSIGN_OR_RETURN(compression::Evaluation e, compression::Evaluate(std::move(graph), built.graph, data.evaluation, evaluate));

  RETURN_IF_ERROR(stage("storing", 0.8));
  ASSIGN_OR_RETURN(const std::string onnx, runtime::ExportOnnxBytes(built.graph));
  v1::Variant record;
  record.set_model(job.model());
  record.set_variant(job.variant());
  record.set_served_name(absl::StrCat(job.model(), ".", job.variant()));
  *record.mutable_profile() = job.profile();
  record.set_profile_text(compression::ProfileText(profile));
  record.set_created_unix_ms(NowMs());
  record.set_job_id(job.id());
  record.set_model_sha256(state.model_sha256);
  for (const std::string& kept : built.report.kept_fp32) record.add_kept_fp32(kept);
  v1::Measurements& m = *record.mutable_measurements();
  m.set_evaluation_rows(e.rows);
  m.set_original_top1(e.original_top1);
  m.set_variant_top1(e.variant_top1);
  m.set_agreement(e.agreement);
  m.set_sqnr_db(std::isfinite(e.sqnr_db) ? e.sqnr_db : 999);
  m.set_cosine(e.cosine);
  m.set_original_size_bytes(static_cast<int64_t>(bytes.size()));
  m.set_parameters(e.variant_parameters.total);
  m.set_original_parameters(e.original_parameters.total);
  m.set_zeros_percent(100.0 * e.variant_parameters.zeros / std::max<int64_t>(1, e.variant_parameters.total));
  // The old entry under this name, if any: replaced once the new one serves.
  absl::StatusOr<v1::Variant> previous = FindVariant(job.model(), job.variant());
  if (previous.ok()) record.set_promoted(previous->promoted());
  ASSIGN_OR_RETURN(CachedVariant stored, cache_.Put(state.cache_key, onnx, record));

  RETURN_IF_ERROR(stage("measuring", 0.85));
  // Loading and measuring on the publisher thread: the variant's instance
  // threads must not inherit the worker's low priority.
  absl::Status published = OnPublisher([&]() -> absl::Status {
    ModelSource source{stored.record.served_name(), 1, stored.onnx_path, "", original->config()};
    source.config.set_name(source.name);
    ASSIGN_OR_RETURN(std::shared_ptr<Model> served, Model::Load(std::move(source), models_.model_options(), metrics_));
    ASSIGN_OR_RETURN(const auto speeds, MeasureSpeeds(*served, *original, data.evaluation));
    const auto& [variant_speed, original_speed] = speeds;
    v1::Measurements& sm = *stored.record.mutable_measurements();
    sm.set_p50_ms(variant_speed.p50_ms);
    sm.set_p99_ms(variant_speed.p99_ms);
    sm.set_throughput(variant_speed.throughput);
    sm.set_original_p50_ms(original_speed.p50_ms);
    sm.set_original_throughput(original_speed.throughput);
    if (state.cancel) return absl::CancelledError("cancelled");
    RETURN_IF_ERROR(cache_.Update(stored.record));
    RETURN_IF_ERROR(models_.AddVariant(job.model(), job.variant(), std::move(served)));
    if (stored.record.promoted()) RETURN_IF_ERROR(models_.Promote(job.model(), job.variant()));
    metrics_->Variant(job.model(), job.variant(),
                      VariantGauges{sm.variant_top1(), sm.agreement(), sm.sqnr_db(), sm.size_bytes(),
                                    sm.p50_ms() / 1000, sm.p99_ms() / 1000, sm.throughput()});
    return absl::OkStatus();
  });
  if (!published.ok()) {
    cache_.Remove(state.cache_key);
    return published;
  }
  if (previous.ok() && previous->cache_key() != state.cache_key) cache_.Remove(previous->cache_key());
  for (const v1::Variant& evicted : cache_.Evict(state.cache_key)) {
    (void)models_.RemoveVariant(evicted.model(), evicted.variant());
  }
  Update(state, [&](v1::Job& j) {
    j.set_message(absl::StrFormat(
        "agreement %.2f %% with the original on %s, SQNR %.1f dB; p50 %.3f ms (original %.3f ms); %d bytes",
        m.agreement(), data.evaluated_on, m.sqnr_db(), stored.record.measurements().p50_ms(),
        stored.record.measurements().original_p50_ms(), stored.record.measurements().size_bytes()));
    for (const std::string& kept : built.report.kept_fp32) j.add_kept_fp32(kept);
    for (const std::string& layer : built.pruning.layers) j.add_layers(layer);
  });
  return absl::OkStatus();
}

void Compressor::Yield(JobState& state) {
  constexpr uint64_t kBusyWindowMs = 100;
  const auto busy = [&] {
    const uint64_t now = static_cast<uint64_t>(NowMs());
    for (const auto& m : models_.Loaded("")) {
      if (m->last_inference_ms() + kBusyWindowMs > now) return true;
    }
    return false;
  };
  if (options_.busy_share < 1 && busy()) {
    const auto worked = Clock::now() - state.working_since;
    const auto pause = std::chrono::duration_cast<Clock::duration>(worked * (1 / options_.busy_share - 1));
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, std::min<Clock::duration>(pause, std::chrono::seconds(10)),
                      [&] { return stopping_ || state.cancel.load(); });
  }
  state.working_since = Clock::now();
}

void Compressor::RestoreVariants(const std::string& model) {
  absl::StatusOr<std::shared_ptr<Model>> original = Original(models_, model);
  if (!original.ok()) return;
  absl::StatusOr<std::string> bytes = ReadFile((*original)->source_path());
  if (!bytes.ok()) return;
  const std::string sha = Sha256Hex(*bytes);
  for (v1::Variant record : cache_.Records()) {
    if (record.model() != model) continue;
    if (record.model_sha256() != sha) {
      // Built from other bytes of the model (it was replaced): not served
      // now, nor answering for the bare name; kept should they come back.
      if (models_.Promoted(model) == record.variant()) (void)models_.Promote(model, "");
      (void)models_.RemoveVariant(model, record.variant());
      if (record.promoted()) {
        record.set_promoted(false);
        (void)cache_.Update(record);
      }
      continue;
    }
    absl::StatusOr<CachedVariant> cached = cache_.Get(record.cache_key());
    absl::Status status = cached.ok() ? OnPublisher([&] { return Serve(cached->record, cached->onnx_path); })
                                      : cached.status();
    if (!status.ok()) std::cerr << "slimserve: variant " << record.served_name() << " not served: " << status.message() << "\n";
  }
}

absl::StatusOr<v1::Variant> Compressor::FindVariant(const std::string& model, const std::string& variant) const {
  for (const v1::Variant& record : cache_.Records()) {
    if (record.model() == model && record.variant() == variant) return record;
  }
  return absl::NotFoundError(absl::StrCat("model '", model, "' has no variant '", variant, "'"));
}

std::vector<v1::Variant> Compressor::Variants(const std::string& model) const {
  std::vector<v1::Variant> out;
  for (v1::Variant& record : cache_.Records()) {
    if (!model.empty() && record.model() != model) continue;
    record.set_served(models_.ServesVariant(record.model(), record.variant()));
    out.push_back(std::move(record));
  }
  return out;
}

absl::Status Compressor::DeleteVariant(const std::string& model, const std::string& variant) {
  ASSIGN_OR_RETURN(v1::Variant record, FindVariant(model, variant));
  if (record.promoted()) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", record.served_name(), "' is promoted; demote it first (promote with an empty variant)"));
  }
  RETURN_IF_ERROR(models_.RemoveVariant(model, variant));
  cache_.Remove(record.cache_key());
  return absl::OkStatus();
}

absl::StatusOr<v1::Variant> Compressor::Promote(const v1::PromoteVariantRequest& request) {
  RETURN_IF_ERROR(Original(models_, request.model()).status());
  if (request.variant().empty()) {
    RETURN_IF_ERROR(models_.Promote(request.model(), ""));
    v1::Variant original;
    original.set_model(request.model());
    original.set_served_name(request.model());
    for (v1::Variant record : cache_.Records()) {
      if (record.model() != request.model() || !record.promoted()) continue;
      record.set_promoted(false);
      RETURN_IF_ERROR(cache_.Update(record));
    }
    return original;
  }
  ASSIGN_OR_RETURN(v1::Variant record, FindVariant(request.model(), request.variant()));
  const v1::Measurements& m = record.measurements();
  const double max_loss = request.max_agreement_loss() > 0 ? request.max_agreement_loss() : 1.0;
  if (!request.force() && m.p50_ms() >= m.original_p50_ms()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not faster than the original (p50 %.3f ms against %.3f ms); set force to promote it anyway",
        record.served_name(), m.p50_ms(), m.original_p50_ms()));
  }
  if (!request.force() && 100.0 - m.agreement() > max_loss) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s agrees with the original on %.2f %% of top-1 answers, more than %.2f points lost; set force, or "
        "raise max_agreement_loss",
        record.served_name(), m.agreement(), max_loss));
  }
  RETURN_IF_ERROR(models_.Promote(request.model(), request.variant()));
  for (v1::Variant other : cache_.Records()) {
    if (other.model() != request.model()) continue;
    const bool promoted = other.cache_key() == record.cache_key();
    if (other.promoted() == promoted) continue;
    other.set_promoted(promoted);
    RETURN_IF_ERROR(cache_.Update(other));
  }
  record.set_promoted(true);
  record.set_served(true);
  return record;
}

absl::StatusOr<std::string> Compressor::VariantFile(const std::string& model, const std::string& variant) {
  ASSIGN_OR_RETURN(v1::Variant record, FindVariant(model, variant));
  ASSIGN_OR_RETURN(CachedVariant cached, cache_.Get(record.cache_key()));
  return cached.onnx_path;
}

}  // namespace slimserve::server
