#!/usr/bin/python3
"""The int8 QDQ and bf16 files that `slimctl compress --offline` writes run in
ONNX Runtime (onnxruntime-node, tools/ort) and agree with slimserve on them:
the Fashion-MNIST example (int8-static with u8 and s8 activations, bf16: same top-1 class on at least
99 % of 1000 test images), PP-OCR's direction classifier (opset 9, upgraded to
13 on the way: same top-1 on at least 99 % of 400 rendered lines) and its
detector (opset 11: at least 99 % of either side's text pixels, > 0.3, are
text pixels of the other on 4 rendered pages).

Usage: ort_qdq_test.py SLIMCTL REPO_ROOT CACHE_DIR
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


def outputs(slimctl, root, model, profile, calibration, x, tmp, name, input_name):
    """Compresses `model`, runs the exported file on `x` in ONNX Runtime and in
    slimserve; returns both first outputs. Files go to tmp/name.*."""
    variant = os.path.join(tmp, name + ".onnx")
    print(run([slimctl, "compress", "--offline", model, "--profile", profile, "--data", calibration,
               "-o", variant]).splitlines()[0])
    x_path = os.path.join(tmp, name + ".x.npy")
    np.save(x_path, x)
    run(["node", os.path.join(root, "tools/ort/ort.js"), "run", variant, "--out", os.path.join(tmp, name + ".ort"),
         x_path])
    run([slimctl, "run", variant, "--input", input_name + "=" + x_path,
         "--output-dir", os.path.join(tmp, name + ".slimserve")])
    ort = np.load(os.path.join(tmp, name + ".ort", "output_0.npy"))
    ours_dir = os.path.join(tmp, name + ".slimserve")
    ours = np.load(os.path.join(ours_dir, sorted(os.listdir(ours_dir))[0]))
    if ort.shape != ours.shape:
        raise SystemExit("%s: output shapes differ: ONNX Runtime %s, slimserve %s" % (name, ort.shape, ours.shape))
    return ort, ours


def top1(name, ort, ours):
    share = 100.0 * float((ort.argmax(1) == ours.argmax(1)).mean())
    print("%s: top-1 agreement ONNX Runtime vs slimserve on the exported file: %.1f %% of %d "
          "(max abs difference %.3f)" % (name, share, len(ort), float(np.abs(ort - ours).max())))
    return share


def text_pixels(name, ort, ours):
    a, b = ort > 0.3, ours > 0.3
    both = float((a & b).sum())
    share = min(100.0 * both / a.sum(), 100.0 * both / b.sum())
    print("%s: text pixels ONNX Runtime %d, slimserve %d; the lesser share of either in the other: %.2f %%"
          % (name, a.sum(), b.sum(), share))
    return share


def main():
    slimctl, root, cache = sys.argv[1:4]
    datasets = os.path.join(cache, "datasets")
    fashion = os.path.join(root, "examples/fashion_mnist/1/model.onnx")
    cls = os.path.join(cache, "real_models/ppocr_cls_mobile_v2/model.onnx")
    det = os.path.join(cache, "real_models/ppocr_det_v4/model.onnx")
    images = np.load(os.path.join(datasets, "fashion_mnist_test.npz"))["input"][:1000]
    lines = np.load(os.path.join(datasets, "text_lines_evaluation.npz"))["x"]
    pages = np.load(os.path.join(datasets, "text_pages_evaluation.npz"))["x"]
    cases = [
        ("fashion_mnist", fashion, "input", "int8-static", "fashion_mnist_train.npz", images, top1),
        ("fashion_mnist", fashion, "input", "int8-static,activations=s8", "fashion_mnist_train.npz", images, top1),
        ("fashion_mnist", fashion, "input", "bf16", "fashion_mnist_train.npz", images, top1),
        ("ppocr_cls", cls, "x", "int8-static,calibration=percentile", "text_lines_calibration.npz", lines, top1),
        ("ppocr_det", det, "x", "int8-static,calibration=percentile,percentile=99.98,keep=depthwise",
         "text_pages_calibration.npz", pages, text_pixels),
    ]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, model, input_name, profile, calibration, x, compare) in enumerate(cases):
            ort, ours = outputs(slimctl, root, model, profile, os.path.join(datasets, calibration), x, tmp,
                                "case%d" % i, input_name)
            failed |= compare(label + " " + profile, ort, ours) < 99.0
    if failed:
        raise SystemExit("agreement below 99 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
