#!/usr/bin/env bash
# One command for the slimserve vs ONNX Runtime comparison: installs ONNX Runtime (tools/ort),
# fetches the real models, generates the benchmark models into $SLIMSERVE_CACHE/bench_models and
# runs bench/compare.py with slimctl ($SLIMCTL, default build/release/cli/slimctl), writing
# bench/results.md. Extra arguments go to compare.py (e.g. --only resnet18 --batches 1); with
# --int8 it compares slimserve fp32, slimserve int8 and ONNX Runtime on the int8 QDQ file instead,
# writing bench/results_int8.md; with --pruned the same for structurally pruned models, writing
# bench/results_pruned.md; with --low-rank for the transformer's factorized MatMuls,
# bench/results_lowrank.md; with --sparse MobileNetV2 with 90 % of its weights zeroed, per layer
# type, bench/results_sparse.md.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: [SLIMCTL=path] [SLIMSERVE_CACHE=dir] bench/run.sh [compare.py options]"
  exit 0
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}
slimctl=${SLIMCTL:-$root/build/release/cli/slimctl}
[[ -x "$slimctl" ]] || { echo "no slimctl at $slimctl (build it, or set SLIMCTL)" >&2; exit 1; }

"$root/tools/ort/install.sh"
"$root/tools/fetch_models.sh" "$cache" >/dev/null
/usr/bin/python3 "$root/bench/make_models.py" --cache "$cache" "$cache/bench_models"
results=$root/bench/results.md
[[ " $* " == *" --int8 "* ]] && results=$root/bench/results_int8.md
[[ " $* " == *" --pruned "* ]] && results=$root/bench/results_pruned.md
[[ " $* " == *" --low-rank "* ]] && results=$root/bench/results_lowrank.md
[[ " $* " == *" --sparse "* ]] && results=$root/bench/results_sparse.md
/usr/bin/python3 "$root/bench/compare.py" --slimctl "$slimctl" --models "$cache/bench_models" \
  --markdown "$results" "$@"
