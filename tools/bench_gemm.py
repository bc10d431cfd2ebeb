#!/usr/bin/env python3
"""GEMM benchmark: sqopt's kernels next to onnxruntime, measured in the same run.

Contenders per shape (M x K x N) and thread count:
  sqopt fp32          sqopt-bench's packed fp32 GEMM
  sqopt int8          s8 x s8 -> int32 GEMM with the fused per-token x per-channel epilogue
  sqopt int8-linear   int8 plus per-token quantization of the float activations
  ort fp32            onnxruntime MatMul, constant B initializer
  ort u8s8 / s8s8     onnxruntime MatMulInteger (u8 or s8 activations, s8 constant B)
  onednn u8s8 / s8s8 / fp32
                      oneDNN's matmul primitive, B reordered once (tools/onednn_gemm.c); only
                      when oneDNN is installed (Debian: apt-get install libdnnl-dev), which
                      --onednn auto (the default) detects; the program is compiled into build/

Builds nothing itself: build first with
    swift build -c release --product sqopt-bench
then run (the venv of tools/setup.sh, or any Python with onnx + onnxruntime + numpy):
    .venv/bin/python tools/bench_gemm.py [--threads 1,2] [--rounds 3] [--onednn auto|off] [--json]

Each number is the median over `--rounds` rounds of per-round medians (each round times
every contender for at least --min-time seconds, the contenders of one shape and thread
count back to back). Ratios are sqopt / onnxruntime.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SHAPES = "256,768,1024,512x768x3072,1x576x1536"
INT8_CEILING_PER_CORE = 466.0  # GOPS, vpdpbusd zmm on this Zen 4 machine type
ORT_KINDS = ("fp32", "u8s8", "s8s8")
ONEDNN_HEADER = "/usr/include/oneapi/dnnl/dnnl.h"


def parse_shape(text):
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"bad shape {text!r}")
    return tuple(parts)  # (m, k, n)


def label(shape):
    return "x".join(str(v) for v in shape)


def ort_model(kind, m, k, n, rng):
    """MatMul or MatMulInteger with a constant B initializer, built in memory."""
    if kind == "fp32":
        a_type, b = TensorProto.FLOAT, rng.uniform(-1, 1, (k, n)).astype(np.float32)
        op, out_type = "MatMul", TensorProto.FLOAT
    else:
        a_type = TensorProto.UINT8 if kind == "u8s8" else TensorProto.INT8
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        op, out_type = "MatMulInteger", TensorProto.INT32
    graph = helper.make_graph(
        [helper.make_node(op, ["A", "B"], ["Y"])],
        f"{kind}_{m}x{k}x{n}",
        [helper.make_tensor_value_info("A", a_type, [m, k])],
        [helper.make_tensor_value_info("Y", out_type, [m, n])],
        [numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_input(kind, m, k, rng):
    if kind == "fp32":
        return rng.uniform(-1, 1, (m, k)).astype(np.float32)
    if kind == "u8s8":
        return rng.integers(0, 256, (m, k), dtype=np.uint8)
    return rng.integers(-128, 128, (m, k), dtype=np.int8)


def time_runs(run, min_time):
    """(median, fastest) wall time over at least 5 runs and min_time seconds."""
    end = time.perf_counter() + min(0.05, min_time)
    while time.perf_counter() < end:  # warm-up
        run()
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < min_time and len(times) < 10000):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def time_ort(kind, shape, threads, min_time):
    m, k, n = shape
    rng = np.random.default_rng(m * 1000003 + k * 1009 + n)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(ort_model(kind, m, k, n, rng), options,
                                   providers=["CPUExecutionProvider"])
    # IO binding keeps Python's per-call overhead (allocation, copies) out of the timing.
    binding = session.io_binding()
    binding.bind_ortvalue_input("A", ort.OrtValue.ortvalue_from_numpy(ort_input(kind, m, k, rng)))
    out_dtype = np.float32 if kind == "fp32" else np.int32
    binding.bind_ortvalue_output("Y", ort.OrtValue.ortvalue_from_numpy(np.zeros((m, n), out_dtype)))
    return time_runs(lambda: session.run_with_iobinding(binding), min_time)


def bench_binary():
    try:
        bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO,
                                 check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        sys.exit(f"error: cannot locate the release build ({error})")
    path = os.path.join(bin_dir, "sqopt-bench")
    if not os.access(path, os.X_OK):
        sys.exit(f"error: {path} missing; run: swift build -c release --product sqopt-bench")
    return path


def onednn_binary(mode):
    """build/onednn_gemm, (re)compiled from tools/onednn_gemm.c; None when oneDNN is absent."""
    if mode == "off":
        return None
    source = os.path.join(REPO, "tools", "onednn_gemm.c")
    binary = os.path.join(REPO, "build", "onednn_gemm")
    if not os.path.exists(ONEDNN_HEADER):
        print(f"note: {ONEDNN_HEADER} not found: no oneDNN columns (apt-get install libdnnl-dev)",
              file=sys.stderr)
        return None
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        compiler = os.environ.get("CC", "cc")
        result = subprocess.run([compiler, "-O2", "-o", binary, source, "-ldnnl"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            print(f"note: tools/onednn_gemm.c did not build; no oneDNN columns:\n{result.stderr}",
                  file=sys.stderr)
            return None
    return binary


def time_onednn(binary, shape, threads, min_time):
    """{kind: (median s, best s)} for u8s8, s8s8 and fp32 on one shape."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_PROC_BIND="false")
    result = subprocess.run([binary, str(min_time), label(shape)], check=True,
                            capture_output=True, text=True, env=env)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return {row["kind"]: (row["medianMs"] / 1e3, row["bestMs"] / 1e3) for row in rows}


def time_sqopt(binary, shapes, threads, min_time):
    command = [binary, "gemm", "--json", "--threads", ",".join(map(str, threads)),
               "--shapes", ",".join(map(label, shapes)), "--min-time", str(min_time)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    found = {}
    for row in json.loads(result.stdout):
        shape = (row["shape"]["m"], row["shape"]["k"], row["shape"]["n"])
        found[(shape, row["threads"], "sqopt " + row["kernel"])] = (row["medianMs"] / 1e3,
                                                                   row["bestMs"] / 1e3)
        found["isa"] = row["isa"]
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES,
                        help=f"comma-separated MxKxN or cube sizes (default {DEFAULT_SHAPES})")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians of medians")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per timing")
    parser.add_argument("--stat", choices=["median", "best"], default="median",
                        help="median: median of per-round medians; best: fastest run of all "
                             "rounds (steadier on a loaded machine)")
    parser.add_argument("--onednn", choices=["auto", "off"], default="auto",
                        help="auto: add oneDNN columns when oneDNN is installed (default)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    binary = bench_binary()
    onednn = onednn_binary(args.onednn)

    # Contenders of one (shape, threads) run back to back, so they see the same load on
    # these shared machines; rounds repeat the whole sweep.
    samples, isa = {}, "?"
    for _ in range(args.rounds):
        for shape in shapes:
            for t in threads:
                sqopt = time_sqopt(binary, [shape], [t], args.min_time)
                isa = sqopt.pop("isa", isa)
                for key, seconds in sqopt.items():
                    samples.setdefault(key, []).append(seconds)
                for kind in ORT_KINDS:
                    key = (shape, t, "ort " + kind)
                    samples.setdefault(key, []).append(time_ort(kind, shape, t, args.min_time))
                if onednn:
                    for kind, seconds in time_onednn(onednn, shape, t, args.min_time).items():
                        samples.setdefault((shape, t, "onednn " + kind), []).append(seconds)

    rows = []
    for shape in shapes:
        ops = 2.0 * shape[0] * shape[1] * shape[2]
        for t in threads:
            def gops(name):
                times = samples.get((shape, t, name))
                if not times:
                    return float("nan")
                if args.stat == "best":
                    return ops / min(best for _, best in times) / 1e9
                return ops / statistics.median(median for median, _ in times) / 1e9
            row = {"shape": label(shape), "threads": t}
            names = ["sqopt fp32", "ort fp32", "sqopt int8", "sqopt int8-linear", "ort u8s8", "ort s8s8"]
            if onednn:
                names += ["onednn fp32", "onednn u8s8", "onednn s8s8"]
            for name in names:
                row[name] = gops(name)
            row["fp32 ratio"] = row["sqopt fp32"] / row["ort fp32"]
            row["int8 / ort u8s8"] = row["sqopt int8"] / row["ort u8s8"]
            row["int8 / ort s8s8"] = row["sqopt int8"] / row["ort s8s8"]
            if onednn:
                row["int8 / onednn u8s8"] = row["sqopt int8"] / row["onednn u8s8"]
                row["fp32 / onednn fp32"] = row["sqopt fp32"] / row["onednn fp32"]
            row["int8 / ceiling"] = row["sqopt int8"] / (INT8_CEILING_PER_CORE * t)
            row["int8 / fp32"] = row["sqopt int8"] / row["sqopt fp32"]
            # Speed-up over the first (usually 1-thread) row of the same shape.
            base = next(r for r in rows + [row] if r["shape"] == label(shape))
            row["int8 scaling"] = row["sqopt int8"] / base["sqopt int8"]
            row["fp32 scaling"] = row["sqopt fp32"] / base["sqopt fp32"]
            rows.append(row)

    if args.json:
        print(json.dumps({"isa": isa, "rounds": args.rounds, "min_time": args.min_time,
                          "stat": args.stat, "load_average": os.getloadavg()[0],
                          "onnxruntime": ort.__version__, "onednn": bool(onednn), "unit": "GFLOPS (fp32) / GOPS (int8)",
                          "rows": rows}, indent=2))
        return
    stat = f"medians of {args.rounds} rounds" if args.stat == "median" else \
        f"fastest run of {args.rounds} rounds"
    print(f"GEMM GFLOPS / GOPS, {stat}; sqopt isa {isa}, onnxruntime {ort.__version__}; "
          f"ratios sqopt / onnxruntime; load average {os.getloadavg()[0]:.1f}")
    columns = list(rows[0].keys())
    widths = [max(len(c), 8) for c in columns]
    print(" | ".join(c.rjust(w) for c, w in zip(columns, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        cells = []
        for c, w in zip(columns, widths):
            v = row[c]
            if isinstance(v, float):
                v = f"{v:.2f}x" if ("ratio" in c or "/" in c or "scaling" in c) else f"{v:.1f}"
            cells.append(str(v).rjust(w))
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
