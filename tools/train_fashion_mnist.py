#!/usr/bin/python3
"""Train slimserve's bundled example model: a small Fashion-MNIST CNN, exported to ONNX.

Usage:
    /usr/bin/python3 tools/train_fashion_mnist.py [--epochs N] [--out examples/fashion_mnist]

Reads the gzipped IDX files of the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist/, override with --data-dir or $FASHION_MNIST_DIR),
trains on the 60k train split, reports accuracy on the 10k test split only, and writes a model
directory in Triton's layout:

    <out>/config.pbtxt       Triton model config (platform onnxruntime_onnx, max_batch_size 64)
    <out>/1/model.onnx       opset 13, BatchNorm folded into Conv, Dropout removed
    <out>/labels.txt         the 10 class names, index order
    <out>/metrics.json       test accuracy, epochs, seed, parameter count, versions, ONNX check

Model contract:
    input   "input"   float32 [batch, 1, 28, 28], pixel / 255.0, i.e. in [0, 1]; no mean/std
                      normalization (the network learned on [0, 1] directly). White garment on
                      black background, as in the IDX files.
    output  "logits"  float32 [batch, 10], raw logits (apply softmax for probabilities).

Python packages import only under /usr/bin/python3 on Debian 12 (python3-torch 1.13,
python3-onnx, python3-numpy). Runs on one thread (torch.set_num_threads(1)) and is deterministic
for a given seed on a given machine/torch build.
"""

import argparse
import gzip
import json
import os
import platform
import random
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "examples", "fashion_mnist")

CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

CONFIG_PBTXT = """\
name: "fashion_mnist"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 1, 28, 28 ]
  }
]
output [
  {
    name: "logits"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
dynamic_batching {
  max_queue_delay_microseconds: 500
}
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
"""


# --------------------------------------------------------------------------------------------
# Data


def read_idx(path):
    """Reads a (gzipped) IDX file into a numpy array (only the unsigned-byte type is needed)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file (magic %04x %02x)" % (path, zero, dtype_code))
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: expected %d bytes of data, got %d" % (path, int(np.prod(dims)), arr.size))
    return arr.reshape(dims)


def load_split(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("%s: %d images but %d labels" % (split, images.shape[0], labels.shape[0]))
    # float32 [N,1,28,28] in [0,1]; int64 labels.
    x = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    y = labels.astype(np.int64)
    return x, y


def augment(batch, rng, shift=2):
    """Random horizontal flip and random translation by up to `shift` pixels (zero fill)."""
    n = batch.shape[0]
    flip = rng.random(n) < 0.5
    batch = batch.copy()
    batch[flip] = batch[flip, :, :, ::-1]
    padded = np.pad(batch, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    dy = rng.integers(0, 2 * shift + 1, n)
    dx = rng.integers(0, 2 * shift + 1, n)
    out = np.empty_like(batch)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28]
    return out


# --------------------------------------------------------------------------------------------
# Model


def conv_bn_relu(cin, cout):
    # No conv bias: BatchNorm supplies it, and the ONNX export folds BN into the conv.
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FashionCNN(nn.Module):
    """Two VGG-style stages (2x conv3x3-BN-ReLU, maxpool) and a two-layer classifier head.

    The hidden layer is 64 wide (not 128) so that the fp32 ONNX file stays near 1 MB.
    """

    def __init__(self, hidden=64, dropout=0.3):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(1, 32),
            *conv_bn_relu(32, 32),
            nn.MaxPool2d(2),  # 28 -> 14
            *conv_bn_relu(32, 64),
            *conv_bn_relu(64, 64),
            nn.MaxPool2d(2),  # 14 -> 7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def describe(model):
    return ("Conv(1->32,3x3,p1)+BN+ReLU, Conv(32->32)+BN+ReLU, MaxPool2, "
            "Conv(32->64)+BN+ReLU, Conv(64->64)+BN+ReLU, MaxPool2, Flatten, "
            "Linear(3136->%d)+ReLU, Dropout(%.1f), Linear(%d->10)"
            % (model.classifier[1].out_features, model.classifier[3].p, model.classifier[1].out_features))


# --------------------------------------------------------------------------------------------
# Training


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def predict_logits(model, x, batch_size=500, channels_last=False):
    model.eval()
    outs = []
    for i in range(0, x.shape[0], batch_size):
        xb = torch.from_numpy(x[i:i + batch_size])
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        outs.append(model(xb).float().numpy())
    return np.concatenate(outs)


def train(args):
    torch.set_num_threads(1)
    seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)

    t0 = time.time()
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "test")
    print("data: train %s, test %s (%.1fs)" % (x_train.shape, x_test.shape, time.time() - t0), flush=True)

    model = FashionCNN().to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %s" % describe(model))
    print("parameters: %d" % n_params, flush=True)

    steps_per_epoch = (x_train.shape[0] + args.batch_size - 1) // args.batch_size
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2)

    history = []
    train_start = time.time()
    test_acc = 0.0
    for epoch in range(1, args.epochs + 1):
        t_epoch = time.time()
        model.train()
        perm = rng.permutation(x_train.shape[0])
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
            xb = x_train[idx]
            if not args.no_augment:
                xb = augment(xb, rng)
            xb = torch.from_numpy(xb).contiguous(memory_format=torch.channels_last)
            yb = torch.from_numpy(y_train[idx])
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * yb.shape[0]
            correct += (logits.argmax(1) == yb).sum().item()
            seen += yb.shape[0]
        train_secs = time.time() - t_epoch
        test_logits = predict_logits(model, x_test, channels_last=True)
        test_acc = float((test_logits.argmax(1) == y_test).mean())
        epoch_secs = time.time() - t_epoch
        rec = {
            "epoch": epoch,
            "loss": loss_sum / seen,
            "train_accuracy": correct / seen,  # running, on augmented batches, train mode
            "test_accuracy": test_acc,
            "seconds": round(epoch_secs, 1),
        }
        history.append(rec)
        print("epoch %2d/%d  loss %.4f  train acc %.4f  test acc %.4f  lr %.2e  %.1fs (train %.1fs)"
              % (epoch, args.epochs, rec["loss"], rec["train_accuracy"], test_acc,
                 sched.get_last_lr()[0], epoch_secs, train_secs), flush=True)
    total_secs = time.time() - train_start
    print("training done in %.1fs, final test accuracy %.4f" % (total_secs, test_acc), flush=True)
    model = model.to(memory_format=torch.contiguous_format)
    model.eval()
    return model, n_params, test_acc, history, total_secs, (x_test, y_test)


# --------------------------------------------------------------------------------------------
# Export and check


def export_onnx(model, path, test_acc):
    import onnx

    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28, dtype=torch.float32)
    torch.onnx.export(
        model, dummy, path,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=13, do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
    )
    m = onnx.load(path)
    m.doc_string = ("slimserve example: Fashion-MNIST CNN trained by tools/train_fashion_mnist.py. "
                    "input: float32 [batch,1,28,28], pixel/255 in [0,1], no mean/std normalization. "
                    "logits: float32 [batch,10], class order in labels.txt.")
    m.model_version = 1
    for k, v in (("input_scaling", "pixel / 255.0 in [0,1]; no mean/std normalization"),
                 ("labels", ",".join(CLASS_NAMES)),
                 ("test_accuracy", "%.4f" % test_acc)):
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)
    ops = sorted({n.op_type for n in m.graph.node})
    print("exported %s (%d bytes), ops: %s" % (path, os.path.getsize(path), ", ".join(ops)), flush=True)
    return m


class _NumpyOnnxEvaluator:
    """Minimal float64 numpy interpreter for the ops this exporter emits (fallback when the
    installed onnx has no onnx.reference.ReferenceEvaluator, which appeared in onnx 1.13)."""

    def __init__(self, model):
        from onnx import numpy_helper
        self.graph = model.graph
        self.inits = {t.name: numpy_helper.to_array(t).astype(np.float64)
                      if numpy_helper.to_array(t).dtype.kind == "f" else numpy_helper.to_array(t)
                      for t in model.graph.initializer}
        self.numpy_helper = numpy_helper

    @staticmethod
    def _attrs(node):
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    @staticmethod
    def _conv(x, w, b, a):
        if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise NotImplementedError("Conv with group/dilation")
        sh, sw = a.get("strides", [1, 1])
        pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        n, c, h, wd = x.shape
        m, _, kh, kw = w.shape
        oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
        cols = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        # cols: [n, c, oh, ow, kh, kw]
        y = np.einsum("nchwij,mcij->nmhw", cols, w, optimize=True)
        if b is not None:
            y = y + b.reshape(1, m, 1, 1)
        return y

    @staticmethod
    def _maxpool(x, a):
        kh, kw = a["kernel_shape"]
        sh, sw = a.get("strides", [1, 1])
        if any(a.get("pads", [0, 0, 0, 0])) or a.get("ceil_mode", 0):
            raise NotImplementedError("MaxPool with pads/ceil_mode")
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        return win.max(axis=(4, 5))

    def run(self, x):
        env = dict(self.inits)
        env[self.graph.input[0].name] = x.astype(np.float64)
        for node in self.graph.node:
            a = self._attrs(node)
            i = [env[n] if n else None for n in node.input]
            op = node.op_type
            if op == "Conv":
                y = self._conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
            elif op == "Relu":
                y = np.maximum(i[0], 0)
            elif op == "MaxPool":
                y = self._maxpool(i[0], a)
            elif op == "Flatten":
                ax = a.get("axis", 1)
                y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
            elif op == "Reshape":
                y = i[0].reshape([d if d != 0 else i[0].shape[k] for k, d in enumerate(i[1].tolist())])
            elif op == "Gemm":
                A = i[0].T if a.get("transA", 0) else i[0]
                B = i[1].T if a.get("transB", 0) else i[1]
                y = a.get("alpha", 1.0) * (A @ B)
                if len(i) > 2 and i[2] is not None:
                    y = y + a.get("beta", 1.0) * i[2]
            elif op == "MatMul":
                y = i[0] @ i[1]
            elif op == "Add":
                y = i[0] + i[1]
            elif op == "Identity":
                y = i[0]
            elif op == "Constant":
                y = self.numpy_helper.to_array(a["value"])
            else:
                raise NotImplementedError(op)
            env[node.output[0]] = y
        return env[self.graph.output[0].name]


def check_onnx(model, onnx_model, x, count=256):
    """Compares ONNX-evaluated logits against torch on `count` test images."""
    x = x[:count]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    try:
        from onnx.reference import ReferenceEvaluator  # onnx >= 1.13
        got = ReferenceEvaluator(onnx_model).run(None, {"input": x})[0]
        evaluator = "onnx.reference.ReferenceEvaluator"
    except ImportError:
        try:
            got = np.concatenate([_NumpyOnnxEvaluator(onnx_model).run(x[j:j + 64])
                                  for j in range(0, x.shape[0], 64)])
            evaluator = "built-in numpy evaluator (float64; onnx %s has no onnx.reference)" % \
                        __import__("onnx").__version__
        except NotImplementedError as e:
            print("ONNX check skipped: no reference evaluator and unsupported op %s" % e)
            return {"skipped": True, "reason": "unsupported op %s" % e}
    max_abs = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
    agree = float((got.argmax(1) == ref.argmax(1)).mean())
    print("ONNX vs torch on %d test images (%s): max abs diff %.3g, top-1 agreement %.4f"
          % (x.shape[0], evaluator, max_abs, agree), flush=True)
    return {"images": int(x.shape[0]), "evaluator": evaluator,
            "max_abs_diff_logits": max_abs, "top1_agreement": agree}


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", default=DEFAULT_OUT, help="model directory (default: %(default)s)")
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle)")
    ap.add_argument("--weight-decay", type=float, default=1e-5)
    ap.add_argument("--no-augment", action="store_true", help="disable flip/shift augmentation")
    ap.add_argument("--min-accuracy", type=float, default=0.91,
                    help="exit non-zero (after writing) if final test accuracy is below this")
    args = ap.parse_args()

    model, n_params, test_acc, history, secs, (x_test, _) = train(args)

    onnx_path = os.path.join(args.out, "1", "model.onnx")
    onnx_model = export_onnx(model, onnx_path, test_acc)
    check = check_onnx(model, onnx_model, x_test)

    with open(os.path.join(args.out, "config.pbtxt"), "w") as f:
        f.write(CONFIG_PBTXT)
    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("\n".join(CLASS_NAMES) + "\n")
    metrics = {
        "model": "fashion_mnist",
        "test_accuracy": round(test_acc, 4),
        "test_images": int(x_test.shape[0]),
        "epochs": args.epochs,
        "seed": args.seed,
        "parameters": n_params,
        "torch_version": torch.__version__,
        "onnx_version": __import__("onnx").__version__,
        "opset": 13,
        "architecture": describe(model),
        "input": {"name": "input", "dtype": "float32", "shape": ["batch", 1, 28, 28],
                  "scaling": "pixel / 255.0 in [0,1], no mean/std normalization"},
        "output": {"name": "logits", "dtype": "float32", "shape": ["batch", 10]},
        "training": {"optimizer": "Adam + OneCycleLR", "peak_lr": args.lr,
                     "weight_decay": args.weight_decay, "batch_size": args.batch_size,
                     "augmentation": "none" if args.no_augment else "hflip + shift<=2px",
                     "threads": 1, "seconds": round(secs, 1),
                     "machine": platform.processor() or platform.machine()},
        "onnx_model_bytes": os.path.getsize(onnx_path),
        "onnx_check": check,
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                    for h in history],
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print("wrote %s/{config.pbtxt,labels.txt,metrics.json,1/model.onnx}" % args.out)
    if test_acc < args.min_accuracy:
        print("test accuracy %.4f below --min-accuracy %.2f" % (test_acc, args.min_accuracy),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
