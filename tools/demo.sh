#!/usr/bin/env bash
# Builds slimserve and starts the server on a model repository seeded from the
# bundled examples (examples/: a Fashion-MNIST classifier) in build/models,
# where uploads are kept; classifies a sample image through it, then keeps
# serving until Ctrl-C. Installs missing Debian packages first.
# Usage: tools/demo.sh [--grpc-port N] [--metrics-port N]   (defaults 8001, 8002)
set -euo pipefail
cd "$(dirname "$0")/.."

grpc_port=8001
metrics_port=8002
while (($#)); do
  case $1 in
    --grpc-port) grpc_port=$2; shift 2 ;;
    --metrics-port) metrics_port=$2; shift 2 ;;
    *) sed -n '2,6p' "$0" | sed 's/^# //'; [[ $1 == --help || $1 == -h ]] && exit 0 || exit 2 ;;
  esac
done

tools/install_deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/release slimserve slimctl

slimctl="build/release/cli/slimctl"
url="localhost:$grpc_port"
repository=build/models
[[ -d $repository ]] || cp -r examples "$repository"
build/release/server/slimserve --model-repository "$repository" --grpc-port "$grpc_port" \
  --metrics-port "$metrics_port" --model-control-mode explicit --load-model '*' &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' EXIT INT TERM
until $slimctl health --url "$url" >/dev/null 2>&1; do
  kill -0 $server 2>/dev/null || { echo "slimserve did not start" >&2; exit 1; }
  sleep 0.2
done

echo
echo "== $slimctl infer fashion_mnist --input input=examples/fashion_mnist/sample_input.npy --url $url"
$slimctl infer fashion_mnist --input input=examples/fashion_mnist/sample_input.npy \
  --labels examples/fashion_mnist/labels.txt --url "$url"
cat <<MSG

slimserve is serving $repository on $url (gRPC, Open Inference Protocol) with metrics at
http://localhost:$metrics_port/metrics. From another terminal:

  $slimctl models --url $url
  $slimctl metadata fashion_mnist --url $url
  $slimctl perf fashion_mnist --concurrency 16 --duration 10 --url $url
  $slimctl load my_model --file my_model.onnx --url $url    # upload an ONNX model
  curl -s localhost:$metrics_port/metrics | grep slimserve_

Compress it, calibrated and evaluated on Debian's Fashion-MNIST images:

  $slimctl datasets upload test --from /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \
      --labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --url $url
  $slimctl compress fashion_mnist --profile int8-static --data test --eval test --url $url
  $slimctl variants fashion_mnist --url $url
  $slimctl infer fashion_mnist.int8_static --input input=examples/fashion_mnist/sample_input.npy --url $url

Any Triton/KServe gRPC client works too (tritonclient.grpc.InferenceServerClient("$url")).
Ctrl-C stops the server.
MSG
wait $server
