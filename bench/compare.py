#!/usr/bin/python3
"""Side-by-side latency of slimserve (`slimctl bench`) and ONNX Runtime (tools/ort/ort.js bench) on
every model in --models. For each model and batch, the two run in alternating rounds (each a fresh
process: warm-up, then --runs timed runs); the table shows the median of the round medians, the
ratio slimserve/ORT, and achieved GFLOPS as a share of the 2-core fp32 peak (467 GFLOPS).
Run it with /usr/bin/python3.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import MODELS, SHAPES, flops  # noqa: E402

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
    args = p.parse_args()

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
