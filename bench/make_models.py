#!/usr/bin/python3
"""Exports slimserve's benchmark models (random weights, torch.manual_seed(0)) to OUT_DIR with
torch.onnx.export (opset 13, dynamic batch axis, constant folding): resnet18, resnet50,
mobilenet_v2, vgg16_bn (10 classes, 128x128) and transformer (4-layer nn.TransformerEncoder + mean +
Linear). Copies PP-OCRv4 det from the fetch cache as ppocr_det.onnx when present. Existing files are
kept. Prints each model's FLOPs at batch 1 (flops() below, also used by bench/compare.py).
Run it with /usr/bin/python3 (Debian's torch/onnx import only there).
"""
import argparse
import os
import shutil

import numpy as np
import onnx
from onnx import numpy_helper

# Inputs whose dims other than the batch are dynamic: model stem -> shape ("B" = batch).
SHAPES = {"ppocr_det": "Bx3x640x640"}
PPOCR_DET = "npm/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx"  # under the slimserve cache


def input_shapes(model, batch, stem=""):
    """{input name: dims}: the first dynamic dim becomes batch; SHAPES[stem] gives the others."""
    inits = {i.name for i in model.graph.initializer}
    shapes = {}
    for vi in (i for i in model.graph.input if i.name not in inits):
        if stem in SHAPES:
            shapes[vi.name] = [batch if d == "B" else int(d) for d in SHAPES[stem].split("x")]
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        if None in dims:
            dims[dims.index(None)] = batch
        if None in dims:
            raise ValueError(f"{stem}: input {vi.name} has more than one dynamic dim; add it to SHAPES")
        shapes[vi.name] = dims
    return shapes


def flops(path, batch=1):
    """2 * MACs of Conv, ConvTranspose, Gemm and MatMul at the given batch, from ONNX shape inference."""
    model = onnx.load(path)
    stem = os.path.basename(path)[: -len(".onnx")]
    g = model.graph
    for name, dims in input_shapes(model, batch, stem).items():
        vi = next(i for i in g.input if i.name == name)
        vi.type.tensor_type.shape.ClearField("dim")
        for d in dims:
            vi.type.tensor_type.shape.dim.add().dim_value = d
    for node in [n for n in g.node if n.op_type == "Constant" and n.attribute[0].name == "value"]:
        g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), node.output[0]))
        g.node.remove(node)  # as initializers, shape inference sees their values (Reshape/Resize)
    g = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    shape = {i.name: list(i.dims) for i in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shape[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    macs = 0
    for n in g.node:
        if n.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            continue
        a, w, y = shape.get(n.input[0]), shape.get(n.input[1]), shape.get(n.output[0])
        if not a or not w or not y or None in a + w + y:
            raise ValueError(f"{stem}: shape of {n.op_type} {n.name} unknown")
        if n.op_type == "Conv":
            macs += np.prod(y) * np.prod(w[1:])
        elif n.op_type == "ConvTranspose":
            macs += np.prod(a) * np.prod(w[1:])
        elif n.op_type == "Gemm":
            trans_a = next((at.i for at in n.attribute if at.name == "transA"), 0)
            macs += np.prod(y) * a[0 if trans_a else 1]
        else:
            macs += np.prod(y) * a[-1]
    return 2 * int(macs)


def export(model, shape, path):
    import torch

    model.eval()
    x = torch.rand(*shape)
    # Grad stays enabled: under no_grad, nn.TransformerEncoder takes its fast path
    # (aten::_transformer_encoder_layer_fwd), which has no ONNX export.
    torch.onnx.export(model, x, path, opset_version=13, do_constant_folding=True,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def adaptive_avg_pool_matrix(n_in, n_out):
    """A [n_out, n_in] with A @ x == adaptive_avg_pool1d(x, n_out) (PyTorch's bin boundaries)."""
    a = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


def build(name):
    import torch
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    if name in ("resnet18", "resnet50", "mobilenet_v2"):
        return getattr(torchvision.models, name)(weights=None), (1, 3, 224, 224)
    if name == "vgg16_bn":
        class AvgPool4to7(nn.Module):
            """AdaptiveAvgPool2d(7) on 4x4 maps as two MatMuls (torch 1.13 cannot export adaptive
            pooling when 7 is not a divisor of 4)."""
            def __init__(self):
                super().__init__()
                self.register_buffer("a", torch.from_numpy(adaptive_avg_pool_matrix(4, 7)))

            def forward(self, x):
                return self.a @ x @ self.a.t()

        m = torchvision.models.vgg16_bn(weights=None)
        m.classifier[-1] = nn.Linear(4096, 10)
        m.avgpool = AvgPool4to7()
        return m, (1, 3, 128, 128)
    if name == "transformer":
        m = transformer_class()().eval()
        x = torch.rand(2, 128, 256)
        with torch.no_grad():
            assert torch.allclose(m(x), m.reference(x), atol=1e-5), "explicit transformer math differs"
        return m, (1, 128, 256)
    raise ValueError(name)


def transformer_class():
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Transformer(nn.Module):
        """nn.TransformerEncoder (4 post-norm ReLU layers, d_model 256, 4 heads, feed-forward 1024,
        batch_first), then a mean over the sequence and Linear 256->10. forward() writes the layers'
        math out with MatMul/Softmax/LayerNorm on the same parameters: the fast path of
        nn.TransformerEncoder has no ONNX export, and nn.MultiheadAttention's export computes its
        reshapes from Shape ops that ONNX shape inference (and so flops()) cannot follow."""

        def __init__(self, seq=128, d=256, heads=4):
            super().__init__()
            self.seq, self.d, self.heads = seq, d, heads
            layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=1024, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=4)
            self.head = nn.Linear(d, 10)

        def split_heads(self, x):  # [B, L, d] -> [B, heads, L, d / heads]
            return x.reshape(-1, self.seq, self.heads, self.d // self.heads).transpose(1, 2)

        def forward(self, x):
            for layer in self.encoder.layers:
                att = layer.self_attn
                w, b = att.in_proj_weight.chunk(3), att.in_proj_bias.chunk(3)
                q, k, v = (self.split_heads(F.linear(x, w[i], b[i])) for i in range(3))
                scores = (q * (self.d // self.heads) ** -0.5) @ k.transpose(2, 3)
                o = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(-1, self.seq, self.d)
                x = layer.norm1(x + att.out_proj(o))
                x = layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))
            return self.head(x.mean(dim=1))

        def reference(self, x):  # the same model through PyTorch's own modules
            return self.head(self.encoder(x).mean(dim=1))

    return Transformer


MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16_bn", "transformer"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--cache", default=os.environ.get("SLIMSERVE_CACHE", os.path.expanduser("~/.cache/slimserve")),
                   help="where tools/fetch_models.sh put the npm packages (for ppocr_det.onnx)")
    args = p.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in MODELS:
        path = f"{args.out_dir}/{name}.onnx"
        if not os.path.exists(path):
            model, shape = build(name)
            export(model, shape, path + ".tmp")
            os.replace(path + ".tmp", path)
    det = f"{args.cache}/{PPOCR_DET}"
    if os.path.exists(det) and not os.path.exists(f"{args.out_dir}/ppocr_det.onnx"):
        shutil.copyfile(det, f"{args.out_dir}/ppocr_det.onnx")
    for name in MODELS + ["ppocr_det"]:
        path = f"{args.out_dir}/{name}.onnx"
        if os.path.exists(path):
            print(f"{path}: {flops(path) / 1e9:.3f} GFLOPs at batch 1")


if __name__ == "__main__":
    main()
