#!/usr/bin/python3
"""The int8 QDQ and bf16 files that `slimctl compress --offline` writes run in
ONNX Runtime (onnxruntime-node, tools/ort) and give the same top-1 class as
slimserve on at least 99 % of 1000 Fashion-MNIST test images.

Usage: ort_qdq_test.py SLIMCTL REPO_ROOT DATASETS_DIR
Needs /usr/bin/python3 with numpy, node, and tools/ort/install.sh done.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np


def run(cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s%s" % (result.returncode, " ".join(cmd), result.stdout, result.stderr))
    return result.stdout


def agreement(slimctl, root, datasets, profile, tmp):
    model = os.path.join(root, "examples/fashion_mnist/1/model.onnx")
    variant = os.path.join(tmp, profile + ".onnx")
    print(run([slimctl, "compress", "--offline", model, "--profile", profile, "--data",
               os.path.join(datasets, "fashion_mnist_train.npz"), "-o", variant]), end="")
    x = os.path.join(tmp, "x.npy")
    run(["node", os.path.join(root, "tools/ort/ort.js"), "run", variant, "--out", os.path.join(tmp, "ort"), x])
    run([slimctl, "run", variant, "--input", "input=" + x, "--output-dir", os.path.join(tmp, "slimserve")])
    ort = np.load(os.path.join(tmp, "ort", "output_0.npy"))
    ours = np.load(os.path.join(tmp, "slimserve", "logits.npy"))
    if ort.shape != (1000, 10) or ours.shape != (1000, 10):
        raise SystemExit("unexpected output shapes %s %s" % (ort.shape, ours.shape))
    share = 100.0 * float((ort.argmax(1) == ours.argmax(1)).mean())
    print("%s: top-1 agreement ONNX Runtime vs slimserve on the exported file: %.1f %% of 1000 "
          "(max abs logit difference %.3f)" % (profile, share, float(np.abs(ort - ours).max())))
    return share


def main():
    slimctl, root, datasets = sys.argv[1:4]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        images = np.load(os.path.join(datasets, "fashion_mnist_test.npz"))["input"][:1000]
        np.save(os.path.join(tmp, "x.npy"), images)
        for profile in ("int8-static", "bf16"):
            failed |= agreement(slimctl, root, datasets, profile, tmp) < 99.0
    if failed:
        raise SystemExit("agreement below 99 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
