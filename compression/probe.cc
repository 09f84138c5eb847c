#include "compression/probe.h"

#include "runtime/backends.h"
#include "runtime/executor.h"
#include "runtime/status_macros.h"

namespace slimserve::compression {

absl::Status VisitValues(const runtime::Graph& graph, const std::vector<std::string>& values,
                         absl::Span<const std::vector<runtime::Tensor>> batches, int num_threads,
                         const std::function<void(size_t, const runtime::Tensor&)>& visit,
                         const Progress& progress) {
  runtime::Graph probe = graph;
  // Where values[i] comes from: {true, k} graph input k, {false, k} output k.
  std::vector<std::pair<bool, size_t>> source;
  for (const std::string& v : values) {
    size_t k = 0;
    while (k < graph.inputs.size() && graph.inputs[k].name != v) ++k;
    if (k < graph.inputs.size()) {
      source.push_back({true, k});
      continue;
    }
    source.push_back({false, probe.outputs.size()});
    runtime::ValueInfo info;
    info.name = v;
    info.dtype = runtime::DataType::kFloat32;
    probe.outputs.push_back(info);
  }
  ASSIGN_OR_RETURN(runtime::BackendSet backends, runtime::MakeBackends("auto", num_threads));
  runtime::ExecutorOptions options;
  options.num_threads = num_threads;
  options.backends = backends.pointers();
  options.measure_kernels = false;
  ASSIGN_OR_RETURN(auto executor, runtime::Executor::Create(std::move(probe), options));
  for (size_t b = 0; b < batches.size(); ++b) {
    RETURN_IF_ERROR(Report(progress, static_cast<double>(b) / batches.size()));
    const std::vector<runtime::Tensor>& batch = batches[b];
    ASSIGN_OR_RETURN(std::vector<runtime::Tensor> outputs, executor->Run(batch));
    for (size_t i = 0; i < values.size(); ++i) {
      visit(i, source[i].first ? batch[source[i].second] : outputs[source[i].second]);
    }
  }
  return absl::OkStatus();
}

}  // namespace slimserve::compression
