#!/usr/bin/env bash
# Installs onnxruntime-node (pinned in package.json) into tools/ort/node_modules.
# ONNXRUNTIME_NODE_INSTALL=skip stops its post-install step from downloading GPU files
# (which fails offline); the npm package already ships the linux-x64 CPU build.
# Idempotent: does nothing when the pinned version is already installed.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "usage: tools/ort/install.sh   # install onnxruntime-node into tools/ort/node_modules"
  exit 0
fi

cd "$(dirname "$0")"
want=$(node -p 'require("./package.json").dependencies["onnxruntime-node"]')
have=$(node -p 'try { require("./node_modules/onnxruntime-node/package.json").version } catch (e) { "" }')
if [[ "$have" == "$want" ]]; then
  echo "onnxruntime-node $have already installed"
  exit 0
fi
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund
node -e 'require("onnxruntime-node")' && echo "onnxruntime-node $want installed"
