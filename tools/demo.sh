#!/usr/bin/env bash
# Builds slimserve and runs it on the bundled example model (a Fashion-MNIST
# classifier): shows the model, classifies a sample image, and times it.
# Installs missing Debian packages first. Usage: tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--help" ]]; then
  sed -n '2,4p' "$0" | sed 's/^# //'
  exit 0
fi

tools/install_deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/release slimctl

slimctl=build/release/cli/slimctl
model=examples/fashion_mnist/1/model.onnx
echo
echo "== slimctl inspect $model"
$slimctl inspect "$model"
echo
echo "== slimctl run $model --input input=examples/fashion_mnist/sample_input.npy"
$slimctl run "$model" --input input=examples/fashion_mnist/sample_input.npy \
  --labels examples/fashion_mnist/labels.txt
echo
echo "== slimctl bench $model --batch 16 --threads 2"
$slimctl bench "$model" --batch 16 --threads 2 --warmup-ms 1000 --runs 100
