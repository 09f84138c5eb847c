// Looking at a graph's intermediate values on data: the graph runs with the
// values added to its outputs.
//
//   RETURN_IF_ERROR(VisitValues(graph, {"conv1_out"}, batches, 0,
//                               [&](size_t i, const Tensor& t) { stats.Add(t); }));
#ifndef SLIMSERVE_COMPRESSION_PROBE_H_
#define SLIMSERVE_COMPRESSION_PROBE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "compression/progress.h"
#include "runtime/graph.h"
#include "runtime/tensor.h"

namespace slimserve::compression {

// Runs `graph` on each batch (on `num_threads` threads, 0: one per core)
// and calls `visit(i, tensor)` with the tensor of values[i], an
// intermediate value or a graph input, for every i. `progress` (may be
// empty) hears of each batch before it runs.
absl::Status VisitValues(const runtime::Graph& graph, const std::vector<std::string>& values,
                         absl::Span<const std::vector<runtime::Tensor>> batches, int num_threads,
                         const std::function<void(size_t, const runtime::Tensor&)>& visit,
                         const Progress& progress = {});

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_PROBE_H_
