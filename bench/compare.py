#!/usr/bin/python3
"""Side-by-side latency of slimserve (`slimctl bench`) and ONNX Runtime (tools/ort/ort.js bench) on
every model in --models. For each model and batch, the two run in alternating rounds (each a fresh
process: warm-up, then --runs timed runs); the table shows the median of the round medians, the
ratio slimserve/ORT, and achieved GFLOPS as a share of the 2-core fp32 peak (467 GFLOPS).

With --int8, each model is first quantized with `slimctl compress` (int8-static, calibrated on
synthetic data: seeded normal values, --calibration-rows rows; int8-dynamic for the transformer)
into --int8-dir, and three runs alternate per round: slimserve on the fp32 file, slimserve on the
int8 QDQ file and ONNX Runtime on the same int8 QDQ file.
Run it with /usr/bin/python3.
"""
import argparse
import json
import os
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
    p.add_argument("--int8-dir", help="where the int8 files go (default: MODELS/int8)")
    p.add_argument("--calibration-rows", type=int, default=16)
    args = p.parse_args()
    if args.int8:
        return main_int8(args)

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


# int8 profile per model: static (calibrated) for the CNNs, dynamic for the transformer.
INT8_PROFILES = {"transformer": "int8-dynamic"}


def quantize(args, stem, path, out_dir):
    """MODEL.int8.onnx in out_dir (kept from an earlier run), or None when compress fails."""
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, stem + ".int8.onnx")
    if os.path.exists(out):
        return out
    profile = INT8_PROFILES.get(stem, "int8-static")
    cmd = [args.slimctl, "compress", "--offline", path, "--profile", profile, "-o", out]
    if profile == "int8-static":
        model = onnx.load(path, load_external_data=False)
        data = os.path.join(out_dir, stem + ".calibration.npz")
        rng = np.random.default_rng(0)
        np.savez(data, **{name: rng.standard_normal([args.calibration_rows] + dims[1:]).astype(np.float32)
                          for name, dims in input_shapes(model, 1, stem).items()})
        cmd += ["--data", data]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"  failed ({p.returncode}): {' '.join(cmd)}\n  {p.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return out


def main_int8(args):
    stems = [s for s in MODELS if os.path.exists(os.path.join(args.models, s + ".onnx"))]
    if args.only:
        stems = [s for s in stems if s in args.only.split(",")]
    int8_dir = args.int8_dir or os.path.join(args.models, "int8")
    rows = []
    for stem in stems:
        path = os.path.join(args.models, stem + ".onnx")
        int8 = quantize(args, stem, path, int8_dir)
        if int8 is None:
            continue
        for batch in [int(b) for b in args.batches.split(",")]:
            opts = ["--batch", str(batch), "--threads", str(args.threads), "--warmup-ms", str(args.warmup_ms),
                    "--runs", str(args.runs), "--json"]
            cmds = {"fp32": [args.slimctl, "bench", path] + opts,
                    "int8": [args.slimctl, "bench", int8] + opts,
                    "ort_int8": ["node", ORT_JS, "bench", int8] + opts}
            times = {k: [] for k in cmds}
            order = list(cmds)
            for r in range(args.rounds):
                for k in order[r % 3:] + order[:r % 3]:  # each runtime leads a round in turn
                    t = bench(cmds[k])
                    if t is not None:
                        times[k].append(t)
            med = {k: statistics.median(v) if v else None for k, v in times.items()}
            rows.append((stem, batch, med["fp32"], med["int8"], med["ort_int8"]))
            print(f"{stem} batch {batch}: " + ", ".join(f"{k} {v} ms" for k, v in times.items()), file=sys.stderr)
    table = table_int8_markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"# slimserve int8 vs fp32 and ONNX Runtime on the same QDQ file\n\n{args.threads} threads, "
                    f"batches {args.batches}, {args.rounds} rounds of {args.runs} runs after {args.warmup_ms} ms "
                    f"warm-up; median of round medians.\n\n{table}\n")


def table_int8_markdown(rows):
    def ms(t):
        return f"{t:.2f}" if t else "error"

    def ratio(a, b):
        return f"{a / b:.2f}" if a and b else "-"

    lines = ["| model | batch | fp32 ms | int8 ms | ORT int8 ms | fp32/int8 | int8/ORT int8 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for stem, batch, f, i, o in rows:
        lines.append(f"| {stem} | {batch} | {ms(f)} | {ms(i)} | {ms(o)} | {ratio(f, i)} | {ratio(i, o)} |")
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
