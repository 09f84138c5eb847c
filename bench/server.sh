#!/usr/bin/env bash
# Serving benchmark: slimserve's overhead over an in-process run, and what
# dynamic batching buys under concurrent load. For the Fashion-MNIST example
# and ResNet-18 (from bench/run.sh's model set), it measures
#   - in-process median latency at batch 1 (slimctl bench),
#   - the server's p50/p99 at concurrency 1 (slimctl perf), the difference
#     being the server's overhead (gRPC, decoding, queueing, encoding),
#   - the p50 of an empty ServerLive call (slimctl perf --live): the round
#     trip any reply costs on this machine, part of that overhead,
#   - throughput at concurrency 16 with dynamic batching and without, and
#     the in-process throughput at the max batch over batch 1: the most that
#     batching can gain in compute, with no serving cost at all,
# in 3 alternating rounds (the machine is shared: its speed drifts over
# minutes), and prints a Markdown table of the medians over the rounds.
# Needs build/release (slimserve, slimctl).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: [SLIMSERVE_CACHE=dir] bench/server.sh [--duration S]   (default 5 s per measurement, 3 rounds)"
  exit 0
fi
duration=5
rounds=3
if [[ "${1:-}" == "--duration" ]]; then duration=$2; fi

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}
bin=$root/build/release
[[ -x $bin/server/slimserve && -x $bin/cli/slimctl ]] || { echo "build build/release first" >&2; exit 1; }
[[ -f $cache/bench_models/resnet18.onnx ]] || { echo "run bench/run.sh once to make the models" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

make_repo() {  # make_repo DIR BATCHING(yes|no)
  local dir=$1 batching=$2
  mkdir -p "$dir/fashion_mnist/1" "$dir/resnet18/1"
  cp "$root/examples/fashion_mnist/1/model.onnx" "$dir/fashion_mnist/1/"
  cp "$cache/bench_models/resnet18.onnx" "$dir/resnet18/1/model.onnx"
  for m in fashion_mnist:64 resnet18:16; do
    local name=${m%%:*} max=${m##*:}
    echo "max_batch_size: $max" > "$dir/$name/config.pbtxt"
    if [[ $batching == yes ]]; then echo "dynamic_batching {}" >> "$dir/$name/config.pbtxt"; fi
  done
}

serve() {  # serve REPO PORT -> waits until ready
  "$bin/server/slimserve" --model-repository "$1" --grpc-port "$2" --metrics-port 0 --threads 2 \
    > "$work/server_$2.log" 2>&1 &
  for _ in $(seq 600); do grep -q "slimserve: ready" "$work/server_$2.log" && return; sleep 0.1; done
  echo "server did not start" >&2; cat "$work/server_$2.log" >&2; exit 1
}

json() { /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print(d['$1'])"; }

make_repo "$work/batching" yes
make_repo "$work/plain" no
serve "$work/batching" 18101
serve "$work/plain" 18102

echo "| model | in-process p50 ms | server c=1 p50 ms | overhead us | empty RPC p50 us | server c=1 p99 ms | c=16 batching /s (mean batch) | c=16 no batching /s | ratio | c=16 batching p99 ms | in-process max batch / batch 1 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for m in fashion_mnist:64 resnet18:16; do
  model=${m%%:*} max=${m##*:}
  onnx=$work/batching/$model/1/model.onnx
  runs=()
  for _ in $(seq $rounds); do
    runs+=("$("$bin/cli/slimctl" bench "$onnx" --batch 1 --threads 2 --warmup-ms 1000 --runs 500 --json)")
    runs+=("$("$bin/cli/slimctl" perf --live --url localhost:18101 --duration "$duration" --json)")
    runs+=("$("$bin/cli/slimctl" perf $model --url localhost:18101 --concurrency 1 --duration "$duration" --json)")
    runs+=("$("$bin/cli/slimctl" perf $model --url localhost:18101 --concurrency 16 --duration "$duration" --json)")
    runs+=("$("$bin/cli/slimctl" perf $model --url localhost:18102 --concurrency 16 --duration "$duration" --json)")
    runs+=("$("$bin/cli/slimctl" bench "$onnx" --batch "$max" --threads 2 --warmup-ms 1000 --runs 40 --json)")
  done
  /usr/bin/python3 - "$model" "${runs[@]}" <<'PY'
import json, statistics, sys
model, runs = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
def median(kind, key):  # kind: which of the 6 measurements of a round
    return statistics.median(r[key] for r in runs[kind::6])
local, live, one = median(0, "median_ms"), median(1, "p50_ms"), median(2, "p50_ms")
batched, plain = median(3, "throughput_per_s"), median(4, "throughput_per_s")
print(f"| {model} | {local:.3f} | {one:.3f} | {1000 * (one - local):.0f} | {1000 * live:.0f} | {median(2, 'p99_ms'):.3f} "
      f"| {batched:.0f} ({median(3, 'server_mean_batch'):.1f}) | {plain:.0f} | {batched / plain:.2f} | {median(3, 'p99_ms'):.2f} "
      f"| {median(5, 'throughput_per_s') / median(0, 'throughput_per_s'):.2f} |")
PY
done
