// The server's metrics in Prometheus' text format over HTTP (prometheus-cpp),
// at http://<address>/metrics. Names start with slimserve_; request series
// have model and version labels (a variant is a model, "<model>.<variant>"),
// variant gauges model and variant labels.
#ifndef SLIMSERVE_SERVER_METRICS_PROMETHEUS_METRICS_H_
#define SLIMSERVE_SERVER_METRICS_PROMETHEUS_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/metrics.h"

namespace slimserve::server {

class PrometheusMetrics : public MetricsSink {
 public:
  // Serves the metrics on `address` ("0.0.0.0:8002").
  static absl::StatusOr<std::unique_ptr<PrometheusMetrics>> Start(const std::string& address);
  ~PrometheusMetrics() override;

  void Request(const std::string& model, const std::string& version, const std::string& reason,
               const RequestTimes& times, int64_t rows) override;
  void Batch(const std::string& model, const std::string& version, int64_t batch_size) override;
  void Pending(const std::string& model, const std::string& version, int64_t requests) override;
  void Loaded(const std::string& model, const std::string& version, double seconds) override;
  void Variant(const std::string& model, const std::string& variant, const VariantGauges& gauges) override;
  void JobEnded(const std::string& state) override;
  void CacheLookup(bool hit) override;

 private:
  struct Families;
  PrometheusMetrics();
  std::unique_ptr<Families> families_;
};

}  // namespace slimserve::server

#endif  // SLIMSERVE_SERVER_METRICS_PROMETHEUS_METRICS_H_
