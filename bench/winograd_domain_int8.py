#!/usr/bin/python3
"""What 8-bit arithmetic inside Winograd's F(4x4, 3x3) would cost in accuracy, on real data.

slimserve's int8 Winograd convolution is exact: transformed inputs and weights are 16-bit, so
its products run at VNNI's 16-bit rate (vpdpwssds), half the 8-bit one. Quantizing the
transformed values to 8 bits instead (one scale per tile position for inputs, calibrated as the
99.99th percentile; one per position and output channel for weights) would double that rate.
This script measures what it does to the Fashion-MNIST example (trained weights, its 10k test
images): top-1 of fp32, of int8 with direct convolution (what slimserve runs: per-tensor u8
activations from min/max calibration, per-channel s8 weights) and of int8 with 8-bit Winograd-
domain arithmetic in the 3x3 convolutions of >= 16 input channels, and each such layer's output
SQNR against fp32. The Winograd arithmetic is emulated in float64, so its integer sums are exact.
Takes a few minutes on 2 cores.

  /usr/bin/python3 bench/winograd_domain_int8.py [--model M.onnx] [--test T.npz] [--calibration C.npz]
"""
import argparse
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

CACHE = os.path.expanduser("~/.cache/slimserve/datasets")
B_T = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
A_T = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                   dtype=torch.float64)


def conv3x3(x, w, b=None):
    """Pad-1 convolution in float32 (torch has no fast float64 one); its rounding is ~1e-7 of the sums."""
    return F.conv2d(x.float(), w.float(), None if b is None else b.float(), padding=1).double()


def both_axes(t, m):
    """t @ m @ t.T over m's last two axes, as two large products."""
    m = torch.tensordot(m, t, dims=([m.dim() - 1], [1]))
    return torch.tensordot(m, t, dims=([m.dim() - 2], [1])).transpose(-1, -2)


def transformed_inputs(q):
    """B^T d B of the 6x6 tiles (pad 1, stride 4) of integer q [N,C,H,W]: [N,C,th,tw,6,6], exact."""
    h, wd = q.shape[2:]
    th, tw = (h + 3) // 4, (wd + 3) // 4
    x = F.pad(q, (1, 4 * tw + 1 - wd, 1, 4 * th + 1 - h))
    return both_axes(B_T, x.unfold(2, 6, 4).unfold(3, 6, 4))


def position_percentiles(v):
    """The 99.99th percentile of |v| per tile position (of every 7th value), [36]."""
    return torch.quantile(v.abs().permute(4, 5, 0, 1, 2, 3).reshape(36, -1)[:, ::7], 0.9999, dim=1)


def winograd_domain_int8(q, w, v_scale):
    """conv3x3(q, w), pad 1, for integer q [N,C,H,W] and s8 w [K,C,3,3], with the transformed
    inputs rounded to 8 bits at v_scale / 127 per position and the transformed weights at one
    scale per position and output channel."""
    n, c, h, wd = q.shape
    v = transformed_inputs(q)
    th, tw = v.shape[2:4]
    s = (v_scale / 127).reshape(6, 6)
    vq = torch.clamp(torch.round(v / s), -128, 127) * s
    u = both_axes(G, w)  # K,C,6,6
    t = u.abs().amax(dim=1, keepdim=True) / 127
    uq = torch.round(u / t) * t
    m = torch.bmm(vq.permute(4, 5, 0, 2, 3, 1).reshape(36, -1, c), uq.permute(2, 3, 1, 0).reshape(36, c, -1))
    m = m.reshape(6, 6, n, th, tw, -1).permute(2, 5, 3, 4, 0, 1)
    y = both_axes(A_T, m)  # N,K,th,tw,4,4
    return y.permute(0, 1, 2, 4, 3, 5).reshape(n, -1, 4 * th, 4 * tw)[:, :, :h, :wd]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="examples/fashion_mnist/1/model.onnx")
    p.add_argument("--test", default=os.path.join(CACHE, "fashion_mnist_test.npz"))
    p.add_argument("--calibration", default=os.path.join(CACHE, "fashion_mnist_train.npz"))
    args = p.parse_args()
    model = onnx.load(args.model)
    weights = {i.name: torch.tensor(numpy_helper.to_array(i), dtype=torch.float64) for i in model.graph.initializer}
    convs = [(weights[n.input[1]], weights[n.input[2]]) for n in model.graph.node if n.op_type == "Conv"]
    gemms = [(weights[n.input[1]], weights[n.input[2]]) for n in model.graph.node if n.op_type == "Gemm"]

    def run(x, mode, stats):
        """Logits; mode fp32 | direct | winograd. stats: per layer, input range and V percentile
        (filled when empty: the calibration pass), and per-layer (signal, noise) sums."""
        ref = x
        for i, (w, b) in enumerate(convs):
            layer = stats.setdefault(i, {"lo": np.inf, "hi": -np.inf})
            exact = F.relu(conv3x3(ref, w, b))
            if mode == "fp32":
                layer["lo"], layer["hi"] = min(layer["lo"], x.min().item()), max(layer["hi"], x.max().item())
                y = exact
            else:
                scale = (layer["hi"] - min(layer["lo"], 0)) / 255
                zero = round(-min(layer["lo"], 0) / scale)
                q = torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero
                w_scale = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
                wq = torch.round(w / w_scale)
                if mode == "winograd" and w.shape[1] >= 16:
                    if "v" not in layer:
                        layer["v"] = position_percentiles(transformed_inputs(q))
                    acc = winograd_domain_int8(q, wq, layer["v"])
                else:
                    acc = conv3x3(q, wq)
                y = F.relu(acc * scale * w_scale.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1))
                layer["sig"] = layer.get("sig", 0) + (exact ** 2).sum().item()
                layer["err"] = layer.get("err", 0) + ((y - exact) ** 2).sum().item()
            x, ref = y, exact
            if i % 2 == 1:
                x, ref = F.max_pool2d(x, 2), F.max_pool2d(ref, 2)
        x = x.flatten(1)
        return F.linear(F.relu(F.linear(x, *gemms[0])), *gemms[1])

    calibration = torch.tensor(np.load(args.calibration)["input"], dtype=torch.float64)
    test = np.load(args.test)
    images, labels = torch.tensor(test["input"], dtype=torch.float64), torch.tensor(test["labels"])
    stats = {mode: {} for mode in ("fp32", "direct", "winograd")}
    run(calibration, "fp32", stats["fp32"])  # activation ranges
    for mode in ("direct", "winograd"):
        stats[mode] = {i: {k: s[k] for k in ("lo", "hi")} for i, s in stats["fp32"].items()}
        run(calibration, mode, stats[mode])  # Winograd-domain percentiles
        for s in stats[mode].values():
            s["sig"] = s["err"] = 0.0
    for mode in ("fp32", "direct", "winograd"):
        correct = sum((run(images[i:i + 250], mode, stats[mode]).argmax(1) == labels[i:i + 250]).sum().item()
                      for i in range(0, len(images), 250))
        sqnr = "  ".join(f"conv{i} {10 * np.log10(s['sig'] / s['err']):.1f} dB"
                         for i, s in stats[mode].items() if s.get("err"))
        print(f"{mode:9s} top-1 {100 * correct / len(images):.2f} %   {sqnr}")


if __name__ == "__main__":
    main()
