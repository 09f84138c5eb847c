#!/usr/bin/env bash
# Serving latency while a compression job runs: the Fashion-MNIST example
# under steady closed-loop load (slimctl perf, concurrency 2), first alone,
# then while the server builds a variant of the same model (by default
# int8-static with entropy calibration over the 10,000 test images;
# --profile P for another, calibrated on the same images; evaluation on 1,000
# training images: a job of several seconds on one thread).
# 3 alternating rounds; prints a Markdown table of p50/p99 and throughput,
# alone and during the job, and the p99 ratio.
# Needs build/release and the data sets tools/test.sh makes.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: [SLIMSERVE_CACHE=dir] bench/compression_load.sh [--duration S] [--profile P]"
  echo "  S: seconds per measurement (default 8); P: the job's profile (default int8-static, entropy)"
  exit 0
fi
duration=8
profile=int8-static,calibration=entropy,samples=10000
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}
bin=$root/build/release
[[ -x $bin/server/slimserve && -x $bin/cli/slimctl ]] || { echo "build build/release first" >&2; exit 1; }
[[ -f $cache/datasets/fashion_mnist_test.npz ]] || { echo "run tools/test.sh once to make the data sets" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/repo"
cp -r "$root/examples/fashion_mnist" "$work/repo/"
port=18201
"$bin/server/slimserve" --model-repository "$work/repo" --grpc-port $port --metrics-port 0 --threads 2 \
  > "$work/server.log" 2>&1 &
for _ in $(seq 600); do grep -q "slimserve: ready" "$work/server.log" && break; sleep 0.1; done
ctl() { "$bin/cli/slimctl" "$@" --url localhost:$port; }
ctl datasets upload big --from "$cache/datasets/fashion_mnist_test.npz" >/dev/null 2>&1
ctl datasets upload eval --from "$cache/datasets/fashion_mnist_train.npz" >/dev/null 2>&1
perf() { ctl perf fashion_mnist --concurrency 2 --duration "$duration" --json; }
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }

alone=() during=()
for round in 1 2 3; do
  alone+=("$(perf)")
  ctl compress fashion_mnist --profile "$profile" --data big --eval eval \
    --variant "load_$round" --no-wait > "$work/job.txt"
  during+=("$(perf)")
  job=$(grep -o 'job j[0-9]*' "$work/job.txt" | cut -d' ' -f2)
  state=$(ctl jobs | awk -v j="$job" '$1 == j {print $3, $4}')
  echo "round $round: the job was $state when the load ended" >&2
  ctl cancel "$job" >/dev/null
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
stat() {  # stat FIELD JSON...
  local f=$1; shift
  local values=()
  for j in "$@"; do values+=("$(echo "$j" | field "$f")"); done
  median "${values[@]}"
}
a50=$(stat p50_ms "${alone[@]}") a99=$(stat p99_ms "${alone[@]}") at=$(stat throughput_per_s "${alone[@]}")
d50=$(stat p50_ms "${during[@]}") d99=$(stat p99_ms "${during[@]}") dt=$(stat throughput_per_s "${during[@]}")
echo "| load | p50 ms | p99 ms | inferences/s |"
echo "|---|---:|---:|---:|"
printf '| alone | %.3f | %.3f | %.0f |\n' "$a50" "$a99" "$at"
printf '| during a compression job | %.3f | %.3f | %.0f |\n' "$d50" "$d99" "$dt"
/usr/bin/python3 -c "print(f'p99 during / alone: {$d99 / $a99:.2f}')"
