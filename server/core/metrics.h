// What the serving core reports as it works, for a metrics exporter to turn
// into time series (server/metrics/ implements it with prometheus-cpp). The
// core calls these from request and batch threads: implementations must be
// thread-safe and quick.
#ifndef SLIMSERVE_SERVER_CORE_METRICS_H_
#define SLIMSERVE_SERVER_CORE_METRICS_H_

#include <cstdint>
#include <string>

namespace slimserve::server {

// Durations of one request, in seconds.
struct RequestTimes {
  double total = 0;    // from arrival to the reply, as the server saw it
  double queue = 0;    // waiting for a batch to form and an instance to run it
  double compute = 0;  // batch assembly and the model run
};

// A variant's measurements (compression/evaluate.h, and timing as served).
struct VariantGauges {
  double top1 = -1;      // percent right against labels; -1 without labels
  double agreement = 0;  // percent of top-1 answers equal to the original's
  double sqnr_db = 0;
  int64_t size_bytes = 0;
  double p50_seconds = 0, p99_seconds = 0;  // batch 1
  double throughput = 0;                    // inferences/s at the max batch
};

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // A finished request of `rows` inferences; `reason` is empty on success,
  // else the status code's name ("INVALID_ARGUMENT").
  virtual void Request(const std::string& model, const std::string& version, const std::string& reason,
                       const RequestTimes& times, int64_t rows) = 0;
  virtual void Batch(const std::string& model, const std::string& version, int64_t batch_size) = 0;
  virtual void Pending(const std::string& model, const std::string& version, int64_t requests) = 0;
  virtual void Loaded(const std::string& model, const std::string& version, double seconds) = 0;
  // A compressed variant's measurements, when it starts serving.
  virtual void Variant(const std::string& /*model*/, const std::string& /*variant*/, const VariantGauges&) {}
  // A compression job ended: SUCCEEDED, FAILED or CANCELLED.
  virtual void JobEnded(const std::string& /*state*/) {}
  // A variant request looked up in the variant cache.
  virtual void CacheLookup(bool /*hit*/) {}
};

// Reports nowhere.
class NullMetrics : public MetricsSink {
 public:
  void Request(const std::string&, const std::string&, const std::string&, const RequestTimes&, int64_t) override {}
  void Batch(const std::string&, const std::string&, int64_t) override {}
  void Pending(const std::string&, const std::string&, int64_t) override {}
  void Loaded(const std::string&, const std::string&, double) override {}
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_CORE_METRICS_H_
