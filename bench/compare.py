#!/usr/bin/python3
"""Side-by-side latency of slimserve (`slimctl bench`) and ONNX Runtime (tools/ort/ort.js bench) on
every model in --models. For each model and batch, the two run in alternating rounds (each a fresh
process: warm-up, then --runs timed runs); the table shows the median of the round medians, the
ratio slimserve/ORT, and achieved GFLOPS as a share of the 2-core fp32 peak (467 GFLOPS).

With --int8, each model is first quantized with `slimctl compress` (int8-static, calibrated on
synthetic data: seeded normal values, --calibration-rows rows; int8-dynamic for the transformer)
into --variant-dir, and three runs alternate per round: slimserve on the fp32 file, slimserve on the
int8 QDQ file and ONNX Runtime on the same int8 QDQ file. --pruned does the same with structured
pruning (VGG16-BN: 50 % of the filters; ResNet-18, MobileNetV2: 30 %), --low-rank with the
transformer's MatMuls factorized to half their parameters; both report the share of the parameters
left and the top-1 agreement and SQNR against fp32 on synthetic data.
Run it with /usr/bin/python3.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import MODELS, SHAPES, flops, input_shapes  # noqa: E402

PEAK_GFLOPS = 467.0
ORT_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tools/ort/ort.js")


def bench(cmd):
    """Runs one `... bench --json` command; returns its median_ms, or None (and says why) on failure."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    # the whole stdout, or else its last line that is a JSON object (log lines may precede it)
    for text in [p.stdout] + [l for l in reversed(p.stdout.splitlines()) if l.startswith("{")]:
        try:
            if p.returncode == 0:
                return float(json.loads(text)["median_ms"])
        except (ValueError, KeyError, TypeError):
            pass
    print(f"  failed ({p.returncode}): {' '.join(cmd)}\n  {p.stderr.strip()[-500:]}", file=sys.stderr)
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slimctl", required=True, help="path of the slimctl binary")
    p.add_argument("--models", required=True, help="directory of .onnx models (bench/make_models.py)")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup-ms", type=int, default=3000)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", help="comma-separated model names (file names without .onnx)")
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument("--int8", action="store_true", help="compare fp32, int8 and ONNX Runtime on the int8 file")
    p.add_argument("--pruned", action="store_true",
                   help="compare fp32, pruned and ONNX Runtime on the pruned file (VGG16-BN 50 %%, "
                        "ResNet-18 and MobileNetV2 30 %% of their filters)")
    p.add_argument("--low-rank", action="store_true",
                   help="compare fp32, low-rank and ONNX Runtime on the low-rank file (the transformer's MatMuls, "
                        "half their parameters)")
    p.add_argument("--sparse", action="store_true",
                   help="MobileNetV2 with 90 %% of its weights zeroed against dense fp32, per layer type "
                        "(slimctl inspect --nodes) and whole")
    p.add_argument("--variant-dir", help="where the variant files go (default: MODELS/int8, MODELS/pruned, "
                                         "MODELS/lowrank)")
    p.add_argument("--calibration-rows", type=int, default=16)
    args = p.parse_args()
    if args.sparse:
        return main_sparse(args)
    mode = "int8" if args.int8 else "pruned" if args.pruned else "lowrank" if args.low_rank else None
    if mode:
        return main_variant(args, mode)

    stems = sorted((f[:-5] for f in os.listdir(args.models) if f.endswith(".onnx")),
                   key=lambda s: (MODELS.index(s) if s in MODELS else len(MODELS), s))
    if args.only:
        stems = [s for s in stems if s in args.only.split(",")]
    rows = []
    for stem in stems:
        path = os.path.join(args.models, stem + ".onnx")
        for batch in [int(b) for b in args.batches.split(",")]:
            opts = ["--batch", str(batch), "--threads", str(args.threads), "--warmup-ms", str(args.warmup_ms),
                    "--runs", str(args.runs), "--json"]
            if stem in SHAPES:
                name = onnx.load(path, load_external_data=False).graph.input[0].name
                opts += ["--shape", f"{name}=" + SHAPES[stem].replace("B", str(batch))]
            cmds = {"slimserve": [args.slimctl, "bench", path] + opts,
                    "ort": ["node", ORT_JS, "bench", path] + opts}
            times = {"slimserve": [], "ort": []}
            for r in range(args.rounds):
                for rt in (["slimserve", "ort"] if r % 2 == 0 else ["ort", "slimserve"]):
                    t = bench(cmds[rt])
                    if t is not None:
                        times[rt].append(t)
            med = {rt: statistics.median(v) if v else None for rt, v in times.items()}
            rows.append((stem, batch, med["slimserve"], med["ort"], flops(path, batch)))
            print(f"{stem} batch {batch}: slimserve {times['slimserve']} ms, ORT {times['ort']} ms", file=sys.stderr)

    table = table_markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"# slimserve vs ONNX Runtime\n\n{args.threads} threads, batches {args.batches}, "
                    f"{args.rounds} rounds of {args.runs} runs after {args.warmup_ms} ms warm-up; "
                    f"median of round medians. Peak: {PEAK_GFLOPS:.0f} GFLOPS fp32.\n\n{table}\n")


# Variant profiles per mode: by model, and for the models not named (None: skipped).
# int8: static (calibrated) for the CNNs, dynamic for the transformer. pruned: filters.
VARIANTS = {
    "int8": ({"transformer": "int8-dynamic"}, "int8-static"),
    "pruned": ({"vgg16_bn": "pruned,sparsity=0.5", "resnet18": "pruned,sparsity=0.3",
                "mobilenet_v2": "pruned,sparsity=0.3"}, None),
    "lowrank": ({"transformer": "low-rank,ratio=0.5"}, None),
    "sparse": ({"mobilenet_v2": "pruned,structure=weight,sparsity=0.9"}, None),
}
STRUCTURAL = ("pruned", "lowrank", "sparse")  # modes that report agreement on synthetic data


def synthetic(path, stem, rows, seed, out):
    """An .npz of seeded normal values for the model's inputs (rows of them)."""
    model = onnx.load(path, load_external_data=False)
    rng = np.random.default_rng(seed)
    np.savez(out, **{name: rng.standard_normal([rows] + dims[1:]).astype(np.float32)
                     for name, dims in input_shapes(model, 1, stem).items()})
    return out


def compress(args, mode, stem, path, out_dir):
    """MODEL.MODE.onnx in out_dir (kept from an earlier run), or None when compress fails or the mode
    has no profile for the model."""
    by_model, default = VARIANTS[mode]
    profile = by_model.get(stem, default)
    if profile is None:
        return None
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{stem}.{mode}.onnx")
    if os.path.exists(out):
        return out
    cmd = [args.slimctl, "compress", "--offline", path, "--profile", profile, "-o", out]
    if profile.startswith(("int8-static", "pruned", "low-rank")):
        cmd += ["--data", synthetic(path, stem, args.calibration_rows, 0,
                                    os.path.join(out_dir, stem + ".calibration.npz"))]
    if mode in STRUCTURAL:
        cmd += ["--eval", synthetic(path, stem, 64, 1, os.path.join(out_dir, stem + ".evaluation.npz"))]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"  failed ({p.returncode}): {' '.join(cmd)}\n  {p.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    with open(out[:-len(".onnx")] + ".txt", "w") as f:  # what compress said, for the table
        f.write(p.stdout)
    return out


def agreement(variant):
    """(top-1 agreement %, SQNR dB) from what `slimctl compress --eval` said of the variant, or Nones."""
    try:
        with open(variant[:-len(".onnx")] + ".txt") as f:
            m = re.search(r"top-1 agreement ([\d.]+) %, output SQNR (-?[\d.]+|inf) dB", f.read())
    except OSError:
        m = None
    return (float(m.group(1)), float(m.group(2))) if m else (None, None)


def parameters(path):
    """Elements of the model's float initializers (sparse ones counted at their full size)."""
    model = onnx.load(path)
    dense = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    return dense + sum(int(np.prod(t.dims)) for t in model.graph.sparse_initializer)


def main_variant(args, mode):
    stems = [s for s in MODELS if os.path.exists(os.path.join(args.models, s + ".onnx"))]
    if args.only:
        stems = [s for s in stems if s in args.only.split(",")]
    out_dir = args.variant_dir or os.path.join(args.models, mode)
    rows = []
    for stem in stems:
        path = os.path.join(args.models, stem + ".onnx")
        variant = compress(args, mode, stem, path, out_dir)
        if variant is None:
            continue
        extra = (100.0 * parameters(variant) / parameters(path), *agreement(variant)) if mode in STRUCTURAL else ()
        for batch in [int(b) for b in args.batches.split(",")]:
            opts = ["--batch", str(batch), "--threads", str(args.threads), "--warmup-ms", str(args.warmup_ms),
                    "--runs", str(args.runs), "--json"]
            cmds = {"fp32": [args.slimctl, "bench", path] + opts,
                    mode: [args.slimctl, "bench", variant] + opts,
                    "ort": ["node", ORT_JS, "bench", variant] + opts}
            times = {k: [] for k in cmds}
            order = list(cmds)
            for r in range(args.rounds):
                for k in order[r % 3:] + order[:r % 3]:  # each runtime leads a round in turn
                    t = bench(cmds[k])
                    if t is not None:
                        times[k].append(t)
            med = [statistics.median(v) if v else None for v in times.values()]
            rows.append((stem, batch, *med, extra))
            print(f"{stem} batch {batch}: " + ", ".join(f"{k} {v} ms" for k, v in times.items()), file=sys.stderr)
    table = table_variant_markdown(rows, mode)
    print(table)
    if args.markdown:
        what = "the same QDQ file" if mode == "int8" else f"the same {mode} file"
        profiles = ", ".join(f"{m}: `{p}`" for m, p in VARIANTS[mode][0].items())
        with open(args.markdown, "w") as f:
            f.write(f"# slimserve {mode} vs fp32 and ONNX Runtime on {what}\n\n{args.threads} threads, "
                    f"batches {args.batches}, {args.rounds} rounds of {args.runs} runs after {args.warmup_ms} ms "
                    f"warm-up; median of round medians.\n\n{table}\n")
            if mode in STRUCTURAL:
                f.write(f"\nProfiles: {profiles}; fitted on {args.calibration_rows} rows of seeded normal data. "
                        "Agreement (top-1) and SQNR of the outputs against fp32 on 64 other such rows.\n")


def layer_types(path):
    """{node name: layer type} for the model's Conv and Gemm nodes."""
    model = onnx.load(path, load_external_data=False)
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    types = {}
    for n in model.graph.node:
        w = dims.get(n.input[1]) if len(n.input) > 1 else None
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        if n.op_type == "Gemm":
            types[n.name] = "Gemm (classifier)"
        elif n.op_type == "Conv" and w and group > 1:
            types[n.name] = f"depthwise {w[2]}x{w[3]}"
        elif n.op_type == "Conv" and w and w[2:] == [1, 1]:
            types[n.name] = "1x1, expand (in < out)" if w[0] > w[1] else "1x1, project (in >= out)"
        elif n.op_type == "Conv" and w:
            types[n.name] = f"full {w[2]}x{w[3]} (stem)"
    return types


def kernel_choices(args, variant, batch):
    """{node: (sparse kept, sparse ms, dense ms)} as the runtime measured each 1x1 layer in isolation when
    it planned `variant` (slimctl inspect --nodes)."""
    cmd = [args.slimctl, "inspect", variant, "--nodes", "--batch", str(batch), "--threads", str(args.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    choices = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s+(\S+)\s+\S+\s+\S+\s+(dense: )?sparse 1x1 \(([\d.]+) % non-zero\) ([\d.]+) ms, "
                     r"dense ([\d.]+) ms", line)
        if m:
            choices[m.group(1)] = (m.group(2) is None, float(m.group(4)), float(m.group(5)))
    return choices


def main_sparse(args):
    """Dense fp32 against the 90 %-sparse variant: per 1x1 layer the runtime's own measurement of its
    sparse and dense kernels (in isolation, as the planner chooses), summed by layer type, and the whole
    model's latency in alternating rounds."""
    stem = "mobilenet_v2"
    path = os.path.join(args.models, stem + ".onnx")
    variant = compress(args, "sparse", stem, path, args.variant_dir or os.path.join(args.models, "sparse"))
    if variant is None:
        return 1
    types = layer_types(path)
    agree, sqnr = agreement(variant)
    out = [f"# slimserve on MobileNetV2 with 90 % of its weights zeroed, per layer type\n",
           f"Profile `{VARIANTS['sparse'][0][stem]}` (magnitude, the same share per layer, least-squares "
           f"recovery on {args.calibration_rows} rows of synthetic data; top-1 agreement {agree} %, SQNR {sqnr} dB "
           f"against fp32 on 64 other rows). File size: {os.path.getsize(path) / 1e6:.1f} MB dense, "
           f"{os.path.getsize(variant) / 1e6:.1f} MB with the zeros stored sparse. {args.threads} threads.\n\n"
           "Per layer, the runtime times its sparse 1x1 kernel against oneDNN's dense one on the layer alone "
           "(as the planner does, in the layouts the plan gives it) and keeps the sparse one where it takes at most "
           "0.8 of the dense time; the table sums those times by layer type. Depthwise, stem and classifier "
           "layers have no sparse kernel and run dense. The whole-model row is `slimctl bench` on each file, "
           f"{args.rounds} alternating rounds of {args.runs} runs after {args.warmup_ms} ms warm-up, median of "
           "round medians; ONNX Runtime on the sparse file for reference (it runs it dense).\n"]
    for batch in [int(b) for b in args.batches.split(",")]:
        choices = kernel_choices(args, variant, batch)
        totals = {}  # type -> [layers, sparse kept, dense ms, chosen ms]
        for node, kind in types.items():
            t = totals.setdefault(kind, [0, 0, 0.0, 0.0])
            t[0] += 1
            if node in choices:
                kept, sparse_ms, dense_ms = choices[node]
                t[1] += kept
                t[2] += dense_ms
                t[3] += sparse_ms if kept else dense_ms
        opts = ["--batch", str(batch), "--threads", str(args.threads), "--warmup-ms", str(args.warmup_ms),
                "--runs", str(args.runs), "--json"]
        cmds = {"dense": [args.slimctl, "bench", path] + opts, "sparse": [args.slimctl, "bench", variant] + opts,
                "ort": ["node", ORT_JS, "bench", variant] + opts}
        times = {k: [] for k in cmds}
        for r in range(args.rounds):
            for k in list(cmds)[r % 3:] + list(cmds)[:r % 3]:
                t = bench(cmds[k])
                if t is not None:
                    times[k].append(t)
        med = {k: statistics.median(v) if v else None for k, v in times.items()}
        out.append(f"\n## batch {batch}\n\n| layer type | layers | sparse kernel kept | dense ms | as run ms | "
                   "dense/as run |\n|---|---:|---:|---:|---:|---:|")
        for kind, (n, kept, dense, chosen) in sorted(totals.items(), key=lambda kv: -kv[1][2]):
            if dense > 0:
                out.append(f"| {kind} | {n} | {kept} | {dense:.3f} | {chosen:.3f} | {dense / chosen:.2f} |")
            elif kind.startswith("1x1"):  # the plan's layouts for them are ones the sparse kernel does not take
                out.append(f"| {kind} | {n} | not tried | - | - | 1 (dense) |")
            else:
                out.append(f"| {kind} | {n} | no sparse kernel | - | - | 1 (dense) |")
        if med["dense"] and med["sparse"]:
            ort = f"; ONNX Runtime {med['ort']:.2f} ms" if med["ort"] else ""
            out.append(f"| whole model | | | {med['dense']:.2f} | {med['sparse']:.2f} | "
                       f"{med['dense'] / med['sparse']:.2f} |\n\nWhole model: dense file {med['dense']:.2f} ms, "
                       f"sparse file {med['sparse']:.2f} ms{ort}.")
    text = "\n".join(out) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


def table_variant_markdown(rows, mode):
    def ms(t):
        return f"{t:.2f}" if t else "error"

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "-"

    def num(v, unit):
        return f"{v:.1f} {unit}" if v is not None else "-"

    head = f"| model | batch | fp32 ms | {mode} ms | ORT {mode} ms | fp32/{mode} | {mode}/ORT {mode} |"
    structural = mode in STRUCTURAL
    lines = [head + (" parameters kept | agreement | SQNR |" if structural else ""),
             "|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if structural else "")]
    for stem, batch, f, v, o, extra in rows:
        line = f"| {stem} | {batch} | {ms(f)} | {ms(v)} | {ms(o)} | {ratio(f, v)} | {ratio(v, o)} |"
        if structural:
            kept, agree, sqnr = extra
            line += f" {kept:.1f} % | {num(agree, '%')} | {num(sqnr, 'dB')} |"
        lines.append(line)
    return "\n".join(lines)


def table_markdown(rows):
    def ms(t):
        return f"{t:.2f}" if t else "error"

    def gflops(fl, t):
        return fl / (t / 1e3) / 1e9 if t else None

    lines = ["| model | batch | slimserve ms | ORT ms | slimserve/ORT | slimserve GFLOPS | slimserve % peak | ORT % peak |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for stem, batch, s, o, fl in rows:
        gs, go = gflops(fl, s), gflops(fl, o)
        lines.append(f"| {stem} | {batch} | {ms(s)} | {ms(o)} | {f'{s / o:.2f}' if s and o else '-'} | "
                     f"{f'{gs:.1f}' if gs else '-'} | {f'{100 * gs / PEAK_GFLOPS:.1f}' if gs else '-'} | "
                     f"{f'{100 * go / PEAK_GFLOPS:.1f}' if go else '-'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
