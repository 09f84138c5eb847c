#!/usr/bin/env bash
# Installs everything slimserve needs to build, test and benchmark on Debian 12.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

if [[ "${1:-}" == "--help" ]]; then
  echo "usage: tools/install_deps.sh [--build]   # apt-get installs the Debian packages slimserve needs"
  echo "  --build  only what building needs (no test data, Python or Node.js), as in the Dockerfile"
  exit 0
fi

packages=(
  # build
  cmake ninja-build g++ pkg-config git
  # runtime dependencies
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libdnnl-dev ocl-icd-opencl-dev libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
  libabsl-dev prometheus-cpp-dev libcivetweb-dev libonnx-dev libssl-dev zlib1g-dev
  # the test targets are part of the build
  libgtest-dev libgmock-dev libbenchmark-dev
)
if [[ "${1:-}" != "--build" ]]; then packages+=(
  # tests and benchmarks
  libonnx-testdata dataset-fashion-mnist
  python3-torch python3-torchvision python3-onnx python3-numpy python3-grpcio python3-yaml yamllint
  python3-pil fonts-dejavu-core
)
# Node.js runs ONNX Runtime for reference outputs and benchmarks; keep one that is already there.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
