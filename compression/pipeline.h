// The compression pipeline: a model graph and a profile in, a variant graph
// out, in standard ONNX ops (so it exports), with a report of what changed.
// The same function serves `slimctl compress --offline` and the server's
// background worker.
//
//   ASSIGN_OR_RETURN(BuiltVariant v, BuildVariant(graph, profile, &calibration, {}));
//   RETURN_IF_ERROR(runtime::ExportOnnxFile(v.graph, "out.onnx"));
#ifndef SLIMSERVE_COMPRESSION_PIPELINE_H_
#define SLIMSERVE_COMPRESSION_PIPELINE_H_

#include <functional>

#include "absl/status/statusor.h"
#include "compression/dataset.h"
#include "compression/profile.h"
#include "compression/progress.h"
#include "compression/prune.h"
#include "compression/quantize.h"
#include "runtime/graph.h"

namespace slimserve::compression {

struct BuildOptions {
  int num_threads = 0;  // 0: one per core
  Progress progress;    // over the calibration runs, called between batches
  int64_t batch = 64;   // calibration rows per run
  // Called as each step of a chain (the profile itself first) begins; may be empty.
  std::function<void(const Profile& step)> starting;
};

struct BuiltVariant {
  runtime::Graph graph;
  QuantizeReport report;  // bf16 and int8
  PruneReport pruning;    // pruned and low-rank (a chain's steps' layers, in order)
};

// `original` as imported. BatchNorm and other constant arithmetic are folded
// first (fp32 is just that; pruned prunes before, for BatchNorm's gamma), and
// models below opset 13 are upgraded to it for bf16 and int8. int8-static
// pruned (to recover) and low-rank (to fit) need `calibration` (its first profile.samples rows
// are used). Fails with FailedPrecondition when the profile does not apply
// to the model (int8 without Conv, Gemm or MatMul; nothing to prune or factorize).
absl::StatusOr<BuiltVariant> BuildVariant(runtime::Graph original, const Profile& profile,
                                          const DataSet* calibration, const BuildOptions& options);

}  // namespace slimserve::compression

#endif  // SLIMSERVE_COMPRESSION_PIPELINE_H_
