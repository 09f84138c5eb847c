#!/usr/bin/python3
"""Write the Fashion-MNIST test split as an evaluation set for slimserve.

Usage:
    /usr/bin/python3 tools/make_eval_set.py [--out DIR] [--count N]

Writes
    DIR/fashion_mnist_test.npz   arrays `input` float32 [N,1,28,28] (pixel / 255, in [0,1]) and
                                 `labels` int64 [N]; the first N test images (default: all 10000).
                                 With --split train: DIR/fashion_mnist_train.npz, the same from
                                 the training split (calibration data for int8).
                                 DIR defaults to ${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}/datasets.
                                 Generated on demand, not committed. Members are stored
                                 uncompressed (about 31 MB for 10000) unless --compress.
    examples/fashion_mnist/sample_input.npy
                                 one test image, float32 [1,1,28,28], same scaling (committed;
                                 choose it with --sample-index, default 0). Its label is printed.

Reads the gzipped IDX files of the Debian package `dataset-fashion-mnist`
(/usr/share/datasets/fashion-mnist/, override with --data-dir or $FASHION_MNIST_DIR).
Needs only numpy; the input scaling matches tools/train_fashion_mnist.py.
"""

import argparse
import gzip
import os
import struct
import sys

import numpy as np

DEFAULT_DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SAMPLE = os.path.join(REPO_ROOT, "examples", "fashion_mnist", "sample_input.npy")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def default_out_dir():
    cache = os.environ.get("SLIMSERVE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "slimserve")
    return os.path.join(cache, "datasets")


def read_idx(path):
    """Reads a (gzipped) unsigned-byte IDX file into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: truncated" % path)
    return arr.reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None,
                    help="output directory (default: ${SLIMSERVE_CACHE:-$HOME/.cache/slimserve}/datasets)")
    ap.add_argument("--count", type=int, default=0, help="first N images (default: all)")
    ap.add_argument("--split", choices=("test", "train"), default="test",
                    help="which split (default test; train images serve as calibration data)")
    ap.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    ap.add_argument("--compress", action="store_true",
                    help="deflate the .npz members (smaller, but readers then need zlib)")
    ap.add_argument("--sample-out", default=DEFAULT_SAMPLE,
                    help="where to write the single-image sample (default: %(default)s); '' to skip")
    ap.add_argument("--sample-index", type=int, default=0, help="test image used as the sample")
    args = ap.parse_args()

    prefix = "t10k" if args.split == "test" else "train"
    images = read_idx(os.path.join(args.data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise SystemExit("unexpected %s split shapes %s / %s" % (args.split, images.shape, labels.shape))

    n = images.shape[0] if args.count <= 0 else min(args.count, images.shape[0])
    x = (images[:n].astype(np.float32) / np.float32(255.0))[:, None, :, :]
    y = labels[:n].astype(np.int64)

    out_dir = args.out or default_out_dir()
    os.makedirs(out_dir, exist_ok=True)
    out_path = os.path.join(out_dir, "fashion_mnist_%s.npz" % args.split)
    tmp_path = out_path + ".tmp.npz"
    # Uncompressed (ZIP_STORED) by default so a plain .npz/.npy reader without zlib can load it.
    (np.savez_compressed if args.compress else np.savez)(tmp_path, input=x, labels=y)
    os.replace(tmp_path, out_path)  # atomic: readers never see a half-written file
    counts = np.bincount(y, minlength=10)
    print("wrote %s: input %s %s in [%g,%g], labels %s %s (%d bytes); per-class counts %s"
          % (out_path, x.shape, x.dtype, x.min(), x.max(), y.shape, y.dtype,
             os.path.getsize(out_path), counts.tolist()))

    if args.sample_out and args.split == "test":
        i = args.sample_index
        sample = (images[i:i + 1].astype(np.float32) / np.float32(255.0))[:, None, :, :]
        os.makedirs(os.path.dirname(os.path.abspath(args.sample_out)), exist_ok=True)
        np.save(args.sample_out, np.ascontiguousarray(sample))
        label = int(labels[i])
        print("wrote %s: test image %d, shape %s %s, label %d (%s)"
              % (args.sample_out, i, sample.shape, sample.dtype, label, CLASS_NAMES[label]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
