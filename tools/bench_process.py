#!/usr/bin/env python3
"""Whole-process timing of `sqopt run`: load, lower, one run, write, as a user runs it.

Each round runs, for every sqopt binary given and every model, one
  sqopt run MODEL --data DIR --output-dir TMP [--time]
as a fresh process and takes its wall time (process start to exit). Binaries that know
`run --time` also report their phases (load, lower, run, write); older ones give the wall
time only. Binaries and models alternate inside each round, so an A/B comparison sees the
same machine load. Printed: medians over the rounds, and per binary the ratio of the fp32
process to the int8 process, measured in the same run.

Defaults: SmolLM2-135M prefill 1 x 256 (the inputs and models tools/bench_e2e.py caches),
fp32 = build/real/smollm2/model.onnx, int8 = sqopt's default pipeline
(calibrate,smooth,quantize: O1, per-channel weights, target=onnxruntime) = WORK/smollm2/sqopt-O1-ort.onnx.

  .venv/bin/python tools/bench_process.py [--sqopt A[,B]] [--rounds 5] [--threads 1] [--work-dir build/bench]
      [--model fp32=PATH --model int8=PATH ...] [--data DIR] [--json | --markdown]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ("load", "lower", "run", "write")


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def knows_time(sqopt):
    out = subprocess.run([sqopt, "help", "run"], capture_output=True, text=True)
    return "--time" in (out.stdout + out.stderr)


def one_process(sqopt, model, data, threads, with_time):
    """Wall seconds of one `sqopt run` process and its `time:` phases (ms), if reported."""
    with tempfile.TemporaryDirectory(prefix="sqopt-process-") as out:
        cmd = [sqopt, "run", model, "--data", data, "--output-dir", out] + (["--time"] if with_time else [])
        env = dict(os.environ, SQOPT_THREADS=str(threads))
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"bench_process: {' '.join(cmd)} failed:\n{done.stderr}")
    phases = {}
    for line in done.stderr.splitlines():
        if line.startswith("time: "):
            for part in line[len("time: "):].split(", "):
                name, value, _unit = part.rsplit(" ", 2)
                phases[name] = float(value)
    return wall * 1000, phases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqopt", default=os.path.join(ROOT, ".build", "release", "sqopt"),
                        help="sqopt binaries, comma separated (A/B: the old one first)")
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "build", "bench"),
                        help="tools/bench_e2e.py's cache of inputs and models (default build/bench)")
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                        help="models to time (default fp32 and int8 SmolLM2, see above)")
    parser.add_argument("--data", default=None, help="the inputs (default WORK/smollm2/test_data_set_0)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="SQOPT_THREADS (default 1)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    work = os.path.join(args.work_dir, "smollm2")
    models = [tuple(m.split("=", 1)) for m in args.model] or [
        ("fp32", os.path.join(ROOT, "build", "real", "smollm2", "model.onnx")),
        ("int8", os.path.join(work, "sqopt-O1-ort.onnx")),
    ]
    data = args.data or os.path.join(work, "test_data_set_0")
    binaries = args.sqopt.split(",")
    for path in [p for _, p in models] + [data] + binaries:
        if not os.path.exists(path):
            raise SystemExit(f"bench_process: {path} missing (tools/bench_e2e.py --rebuild makes the models)")
    timed = {b: knows_time(b) for b in binaries}
    load_start = load_average()
    samples = {(b, label): [] for b in binaries for label, _ in models}
    for round_index in range(args.rounds):
        for binary in binaries:
            for label, path in models:
                wall, phases = one_process(binary, path, data, args.threads, timed[binary])
                samples[(binary, label)].append((wall, phases))
                print(f"round {round_index + 1}: {binary} {label}: {wall:.0f} ms {phases}", file=sys.stderr)
    load_end = load_average()

    rows = []
    for binary in binaries:
        for label, path in models:
            runs = samples[(binary, label)]
            row = {"sqopt": binary, "model": label, "path": path, "threads": args.threads,
                   "wall_ms": statistics.median(w for w, _ in runs), "walls_ms": [w for w, _ in runs]}
            for phase in PHASES:
                values = [p[phase] for _, p in runs if phase in p]
                if values:
                    row[f"{phase}_ms"] = statistics.median(values)
            rows.append(row)
        by_label = {r["model"]: r for r in rows if r["sqopt"] == binary}
        if "fp32" in by_label:
            for r in by_label.values():
                r["fp32_over_this"] = by_label["fp32"]["wall_ms"] / r["wall_ms"]
    report = {"rounds": args.rounds, "threads": args.threads, "data": data,
              "load_average_start": load_start, "load_average_end": load_end, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    header = f"sqopt run, whole process, medians of {args.rounds} rounds, {args.threads} thread(s); " \
             f"1-minute load average {load_start:.1f} at start, {load_end:.1f} at end"
    cols = ["sqopt", "model", "wall ms"] + [f"{p} ms" for p in PHASES] + ["fp32 / this"]
    def cells(r):
        return [r["sqopt"], r["model"], f"{r['wall_ms']:.0f}"] + \
               [f"{r[p + '_ms']:.0f}" if p + "_ms" in r else "-" for p in PHASES] + \
               [f"{r['fp32_over_this']:.2f}x" if "fp32_over_this" in r else "-"]
    if args.markdown:
        print(header + "\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|")
        for r in rows:
            print("| " + " | ".join(cells(r)) + " |")
    else:
        print(header)
        table = [cols] + [cells(r) for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
        for row in table:
            print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


if __name__ == "__main__":
    main()
