#include "server/metrics/prometheus_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace slimserve::server {
namespace {

using prometheus::Histogram;

// 100 us to 10 s: request, queue and compute durations.
Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Histogram::BucketBoundaries BatchBuckets() { return {1, 2, 4, 8, 16, 32, 64, 128}; }

}  // namespace

struct PrometheusMetrics::Families {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  prometheus::Family<Histogram>& request = prometheus::BuildHistogram()
                                               .Name("slimserve_request_duration_seconds")
                                               .Help("Time from a request's arrival to its reply")
                                               .Register(*registry);
  prometheus::Family<Histogram>& queue = prometheus::BuildHistogram()
                                             .Name("slimserve_queue_duration_seconds")
                                             .Help("Time a request waited for its batch to start")
                                             .Register(*registry);
  prometheus::Family<Histogram>& compute = prometheus::BuildHistogram()
                                               .Name("slimserve_compute_duration_seconds")
                                               .Help("Time of the batch run that computed a request")
                                               .Register(*registry);
  prometheus::Family<prometheus::Counter>& success = prometheus::BuildCounter()
                                                         .Name("slimserve_request_success_total")
                                                         .Help("Requests answered successfully")
                                                         .Register(*registry);
  prometheus::Family<prometheus::Counter>& failure = prometheus::BuildCounter()
                                                         .Name("slimserve_request_failure_total")
                                                         .Help("Requests that failed, by reason (gRPC status)")
                                                         .Register(*registry);
  prometheus::Family<prometheus::Counter>& inferences =
      prometheus::BuildCounter()
          .Name("slimserve_inference_count_total")
          .Help("Inferences computed (a request of batch size n counts n)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& executions = prometheus::BuildCounter()
                                                            .Name("slimserve_execution_count_total")
                                                            .Help("Model runs (batches) executed")
                                                            .Register(*registry);
  prometheus::Family<Histogram>& batch_size = prometheus::BuildHistogram()
                                                  .Name("slimserve_batch_size")
                                                  .Help("Rows per model run")
                                                  .Register(*registry);
  prometheus::Family<prometheus::Gauge>& pending = prometheus::BuildGauge()
                                                       .Name("slimserve_pending_requests")
                                                       .Help("Requests queued and not yet running")
                                                       .Register(*registry);
  prometheus::Family<prometheus::Gauge>& load = prometheus::BuildGauge()
                                                    .Name("slimserve_model_load_duration_seconds")
                                                    .Help("Time the last load of a model version took")
                                                    .Register(*registry);
  // A compressed variant's measurements, one gauge each (VariantGauges' order).
  std::vector<prometheus::Family<prometheus::Gauge>*> variant = [this] {
    const std::pair<const char*, const char*> gauges[] = {
        {"slimserve_variant_top1_percent", "Top-1 against the evaluation labels (-1: no labels)"},
        {"slimserve_variant_agreement_percent", "Top-1 answers equal to the original model's"},
        {"slimserve_variant_sqnr_db", "Output signal-to-quantization-noise ratio against the original"},
        {"slimserve_variant_size_bytes", "Size of the variant's ONNX file"},
        {"slimserve_variant_latency_p50_seconds", "Median latency at batch 1, measured as served"},
        {"slimserve_variant_latency_p99_seconds", "99th percentile latency at batch 1, measured as served"},
        {"slimserve_variant_throughput", "Inferences per second at the max batch size"}};
    std::vector<prometheus::Family<prometheus::Gauge>*> families;
    for (const auto& [name, help] : gauges) {
      families.push_back(&prometheus::BuildGauge().Name(name).Help(help).Register(*registry));
    }
    return families;
  }();
  prometheus::Family<prometheus::Counter>& jobs = prometheus::BuildCounter()
                                                      .Name("slimserve_compression_jobs_total")
                                                      .Help("Compression jobs ended, by state")
                                                      .Register(*registry);
  prometheus::Family<prometheus::Counter>& cache = prometheus::BuildCounter()
                                                       .Name("slimserve_variant_cache_lookups_total")
                                                       .Help("Variant requests looked up in the cache, by result")
                                                       .Register(*registry);
};

PrometheusMetrics::PrometheusMetrics() : families_(std::make_unique<Families>()) {}
PrometheusMetrics::~PrometheusMetrics() = default;

absl::StatusOr<std::unique_ptr<PrometheusMetrics>> PrometheusMetrics::Start(const std::string& address) {
  std::unique_ptr<PrometheusMetrics> metrics(new PrometheusMetrics());
  try {
    metrics->families_->exposer = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address, ": ", e.what(),
                                               " (is the port taken? choose one with --metrics-port)"));
  }
  metrics->families_->exposer->RegisterCollectable(metrics->families_->registry);
  return metrics;
}

void PrometheusMetrics::Request(const std::string& model, const std::string& version, const std::string& reason,
                                const RequestTimes& times, int64_t rows) {
  Families& f = *families_;
  const prometheus::Labels labels = {{"model", model}, {"version", version}};
  if (!reason.empty()) {
    f.failure.Add({{"model", model}, {"version", version}, {"reason", reason}}).Increment();
    return;
  }
  f.success.Add(labels).Increment();
  f.inferences.Add(labels).Increment(static_cast<double>(rows));
  f.request.Add(labels, LatencyBuckets()).Observe(times.total);
  f.queue.Add(labels, LatencyBuckets()).Observe(times.queue);
  f.compute.Add(labels, LatencyBuckets()).Observe(times.compute);
}

void PrometheusMetrics::Batch(const std::string& model, const std::string& version, int64_t batch_size) {
  const prometheus::Labels labels = {{"model", model}, {"version", version}};
  families_->executions.Add(labels).Increment();
  families_->batch_size.Add(labels, BatchBuckets()).Observe(static_cast<double>(batch_size));
}

void PrometheusMetrics::Pending(const std::string& model, const std::string& version, int64_t requests) {
  families_->pending.Add({{"model", model}, {"version", version}}).Set(static_cast<double>(requests));
}

void PrometheusMetrics::Loaded(const std::string& model, const std::string& version, double seconds) {
  families_->load.Add({{"model", model}, {"version", version}}).Set(seconds);
}

void PrometheusMetrics::Variant(const std::string& model, const std::string& variant, const VariantGauges& g) {
  const double values[] = {g.top1,          g.agreement,   g.sqnr_db,     static_cast<double>(g.size_bytes),
                           g.p50_seconds,   g.p99_seconds, g.throughput};
  for (size_t i = 0; i < families_->variant.size(); ++i) {
    families_->variant[i]->Add({{"model", model}, {"variant", variant}}).Set(values[i]);
  }
}

void PrometheusMetrics::JobEnded(const std::string& state) { families_->jobs.Add({{"state", state}}).Increment(); }

void PrometheusMetrics::CacheLookup(bool hit) {
  families_->cache.Add({{"result", hit ? "hit" : "miss"}}).Increment();
}

}  // namespace slimserve::server
