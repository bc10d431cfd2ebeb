#!/usr/bin/env python3
"""End-to-end benchmark: sqopt vs onnxruntime, in one run, on the real models.

Contenders per model and thread count (medians of --runs timed runs after --warmup):
  sqopt fp32            sqopt's interpreter on model.onnx            (`sqopt bench`)
  sqopt int8 O1 / O3    sqopt's interpreter on its own W8A8 models   (`sqopt bench`)
  sqopt int8 O1 bmm     the same with the attention MatMuls in int8 too (quantize{bmm=true})
  sqopt int8 O1 ort     sqopt's interpreter on the onnxruntime-target file (the same kernels)
  ort fp32              onnxruntime on model.onnx
  ort on sqopt O1 / O3 / O1 bmm QDQ
                        onnxruntime on sqopt's portable QDQ files (quantize{target=qdq}:
                        int8 activations, zero point 0: onnxruntime's slow s8×s8 path)
  ort on sqopt O1 / O3 ort-target [+bmm] [, LM head float]
                        onnxruntime on sqopt's onnxruntime-target files (quantize{target=
                        onnxruntime}, the default: uint8 activations with zero point 128, which
                        onnxruntime fuses into its u8×s8 MatMulIntegerToFloat kernels). Every
                        sqopt file has its LM head in int8 (the default since 2026-12-03, as
                        onnxruntime's quantize_dynamic does); "LM head float" is the default
                        before that: smooth{scope=norms,lm-head=false}, quantize{lm-head=false}
  sqopt int8 auto ort-target / ort on sqopt auto ort-target
                        the quantize{policy=auto,calibration=mse} file (per layer O3, O1 or
                        float within the default budget; docs/smoothquant.md); "auto-loose": the same with
                        budget=0.05 (SmolLM2) / budget=0.995 (MiniLM)
  ort static            onnxruntime on its own quantize_static model (QDQ, int8 symmetric
                        activations and weights, MinMax, MatMul only, the same calib samples)
  ort dynamic           onnxruntime on its own quantize_dynamic model (u8 activations, s8 weights,
                        every MatMul with a constant weight, the LM head included)

sqopt's models come from
  sqopt --passes calibrate,smooth,quantize{policy=P,target=T[,bmm=true]} --calib build/real/X/calib MODEL -o OUT
Shapes: MiniLM batch 8 x 128 tokens, SmolLM2 prefill 1 x 256 tokens (random token ids, written
as a test_data_set_0 folder under build/bench/X/). Generated models are cached in build/bench/X/
(--rebuild regenerates them).

  .venv/bin/python tools/bench_e2e.py [--models minilm,smollm2] [--threads 1,2] [--json]
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from functools import partial

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {"minilm": (8, 128), "smollm2": (1, 256)}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def graph_inputs(model_path):
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return m, [i for i in m.graph.input if i.name not in inits]


def vocab_size(model):
    """Rows of the embedding table gathered by input_ids."""
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == "input_ids" and node.input[0] in inits:
            return inits[node.input[0]].dims[0]
    raise SystemExit("bench_e2e: cannot find the token embedding (Gather on input_ids)")


def make_inputs(model_path, shape, out_dir, seed=0):
    """Random token ids of the given shape as a test_data_set_0 folder; returns {name: array}."""
    model, inputs = graph_inputs(model_path)
    rng = np.random.default_rng(seed)
    vocab = vocab_size(model)
    arrays = {}
    for inp in inputs:
        if inp.name == "input_ids":
            arrays[inp.name] = rng.integers(0, vocab, size=shape, dtype=np.int64)
        elif inp.name == "attention_mask":
            arrays[inp.name] = np.ones(shape, dtype=np.int64)
        elif inp.name == "token_type_ids":
            arrays[inp.name] = np.zeros(shape, dtype=np.int64)
        else:
            raise SystemExit(f"bench_e2e: do not know how to fill input '{inp.name}'")
    data_dir = os.path.join(out_dir, "test_data_set_0")
    os.makedirs(data_dir, exist_ok=True)
    for k, inp in enumerate(inputs):
        with open(os.path.join(data_dir, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(arrays[inp.name], inp.name).SerializeToString())
    return data_dir, arrays


def run(cmd, env=None):
    log("  $ " + " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench_e2e: command failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def sqopt_model(sqopt, model_path, calib, policy, out, rebuild, smooth="smooth"):
    """policy: the options of quantize, e.g. "O1" or "O1,bmm=true"; smooth: the smooth step."""
    if rebuild or not os.path.exists(out):
        run([sqopt, "--passes", f"calibrate,{smooth},quantize{{policy={policy}}}", "--calib", calib,
             model_path, "-o", out, "--force", "--quiet"])
    return out


class CalibReader:
    """onnxruntime CalibrationDataReader over test_data_set_*/input_N.pb folders."""

    def __init__(self, calib_dir, input_names):
        dirs = sorted((d for d in os.listdir(calib_dir) if d.startswith("test_data_set_")),
                      key=lambda d: int(d.rsplit("_", 1)[1]))
        self.samples = []
        for d in dirs:
            feed = {}
            for k, name in enumerate(input_names):
                path = os.path.join(calib_dir, d, f"input_{k}.pb")
                feed[name] = numpy_helper.to_array(onnx.load_tensor(path))
            self.samples.append(feed)
        self.it = iter(self.samples)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.samples)


def ort_static(model_path, calib, out, rebuild):
    if not rebuild and os.path.exists(out):
        return out
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    _, inputs = graph_inputs(model_path)
    log(f"  quantize_static -> {out}")
    quantize_static(model_path, out, CalibReader(calib, [i.name for i in inputs]),
                    quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"], per_channel=False,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return out


def ort_dynamic(model_path, out, rebuild):
    if not rebuild and os.path.exists(out):
        return out
    from onnxruntime.quantization import QuantType, quantize_dynamic
    log(f"  quantize_dynamic -> {out}")
    quantize_dynamic(model_path, out, op_types_to_quantize=["MatMul"], per_channel=False,
                     weight_type=QuantType.QInt8)
    return out


def time_ort(model_path, feed, threads, runs, warmup):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return times


def time_sqopt(sqopt, model_path, data_dir, threads, runs, warmup):
    env = dict(os.environ, SQOPT_THREADS=str(threads))
    out = run([sqopt, "bench", model_path, "--data", data_dir, "--runs", str(runs), "--warmup", str(warmup),
               "--threads", str(threads), "--json"], env=env)
    return json.loads(out)["runMilliseconds"]


def bench_model(name, args):
    real = os.path.join(ROOT, "build", "real", name)
    model_path = os.path.join(real, "model.onnx")
    calib = os.path.join(real, "calib")
    if not os.path.exists(model_path):
        raise SystemExit(f"bench_e2e: {model_path} missing: run tools/build_{name}.py and tools/make_eval_data.py")
    work = os.path.join(args.work_dir, name)
    os.makedirs(work, exist_ok=True)
    log(f"{name}: preparing inputs {SHAPES[name]} and models in {work}")
    data_dir, feed = make_inputs(model_path, SHAPES[name], work)
    def sq(key, spec, smooth="smooth"):
        return sqopt_model(args.sqopt, model_path, calib, spec, os.path.join(work, f"sqopt-{key}.onnx"), args.rebuild, smooth)

    # The default before 2026-12-03: LM head float, norm groups only.
    old_smooth = "smooth{scope=norms,lm-head=false}"

    # Built on first use, so --contenders builds only the models it times.
    builders = {
        "O1": lambda: sq("O1", "O1,target=qdq"),
        "O3": lambda: sq("O3", "O3,target=qdq"),
        "O1-bmm": lambda: sq("O1-bmm", "O1,target=qdq,bmm=true"),
        "O1-ort": lambda: sq("O1-ort", "O1,target=onnxruntime"),
        "O3-ort": lambda: sq("O3-ort", "O3,target=onnxruntime"),
        "O1-ort-float-head": lambda: sq("O1-ort-float-head", "O1,target=onnxruntime,lm-head=false", old_smooth),
        "O3-ort-float-head": lambda: sq("O3-ort-float-head", "O3,target=onnxruntime,lm-head=false", old_smooth),
        "O3-ort-bmm": lambda: sq("O3-ort-bmm", "O3,target=onnxruntime,bmm=true"),
        # MiniLM: the budget on sentence_embedding, as in docs/accuracy.md.
        "auto-ort": lambda: sq("auto-ort", "auto,calibration=mse" + (",output=sentence_embedding" if name == "minilm" else "")),
        # A looser budget (docs/accuracy.md: SmolLM2 budget=0.05, +1.9% perplexity, 83% static MACs).
        "auto-loose-ort": lambda: sq("auto-loose-ort", "auto,calibration=mse,"
                                     + ("budget=0.995,output=sentence_embedding" if name == "minilm" else "budget=0.05")),
        "ort-static": lambda: ort_static(model_path, calib, os.path.join(work, "ort-static.onnx"), args.rebuild),
        "ort-dynamic": lambda: ort_dynamic(model_path, os.path.join(work, "ort-dynamic.onnx"), args.rebuild),
    }
    built = {}

    def model(key):
        if key not in built:
            built[key] = builders[key]()
        return built[key]

    # MiniLM has no LM head: its lm-head rows would repeat the others.
    head = name != "minilm"
    contenders = [
        ("sqopt fp32", "sqopt", model_path),
        ("sqopt int8 O1", "sqopt", partial(model, "O1")),
        ("sqopt int8 O3", "sqopt", partial(model, "O3")),
        ("sqopt int8 O1 bmm", "sqopt", partial(model, "O1-bmm")),
        ("sqopt int8 O1 ort-target", "sqopt", partial(model, "O1-ort")),
        ("sqopt int8 O3 ort-target", "sqopt", partial(model, "O3-ort")),
        ("sqopt int8 auto ort-target", "sqopt", partial(model, "auto-ort")),
        ("sqopt int8 auto-loose ort-target", "sqopt", partial(model, "auto-loose-ort")),
    ] + ([
        ("sqopt int8 O1 ort-target, LM head float", "sqopt", partial(model, "O1-ort-float-head")),
    ] if head else []) + [
        ("ort fp32", "ort", model_path),
        ("ort on sqopt O1 QDQ", "ort", partial(model, "O1")),
        ("ort on sqopt O3 QDQ", "ort", partial(model, "O3")),
        ("ort on sqopt O1 bmm QDQ", "ort", partial(model, "O1-bmm")),
        ("ort on sqopt O1 ort-target", "ort", partial(model, "O1-ort")),
        ("ort on sqopt O3 ort-target", "ort", partial(model, "O3-ort")),
        ("ort on sqopt auto ort-target", "ort", partial(model, "auto-ort")),
        ("ort on sqopt auto-loose ort-target", "ort", partial(model, "auto-loose-ort")),
    ] + ([
        ("ort on sqopt O1 ort-target, LM head float", "ort", partial(model, "O1-ort-float-head")),
        ("ort on sqopt O3 ort-target, LM head float", "ort", partial(model, "O3-ort-float-head")),
    ] if head else []) + [
        ("ort on sqopt O3 ort-target +bmm", "ort", partial(model, "O3-ort-bmm")),
    ] + [
        ("ort quantize_static", "ort", partial(model, "ort-static")),
        ("ort quantize_dynamic", "ort", partial(model, "ort-dynamic")),
    ]
    if args.contenders is not None:
        wanted = re.compile(args.contenders)
        contenders = [c for c in contenders if wanted.search(c[0])]
    rows = []
    for threads in args.threads:
        for label, engine, path in contenders:
            log(f"{name}: {label}, {threads} thread(s)")
            try:
                path = path() if callable(path) else path
                if engine == "sqopt":
                    times = time_sqopt(args.sqopt, path, data_dir, threads, args.runs, args.warmup)
                else:
                    times = time_ort(path, feed, threads, args.runs, args.warmup)
                rows.append({"model": name, "shape": list(SHAPES[name]), "threads": threads, "contender": label,
                             "median_ms": statistics.median(times), "min_ms": min(times), "runs": len(times)})
            except (SystemExit, Exception) as error:  # keep the other contenders' figures
                log(f"  FAILED: {error}")
                rows.append({"model": name, "shape": list(SHAPES[name]), "threads": threads, "contender": label,
                             "error": str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)})
        base = {r["contender"]: r.get("median_ms") for r in rows if r["threads"] == threads and r["model"] == name}
        for r in rows:
            if r["threads"] == threads and r["model"] == name and "median_ms" in r:
                for ref_key, ref in (("vs_sqopt_fp32", "sqopt fp32"), ("vs_ort_fp32", "ort fp32"),
                                     ("vs_ort_dynamic", "ort quantize_dynamic")):
                    if base.get(ref):
                        r[ref_key] = base[ref] / r["median_ms"]
    return rows


def print_markdown(report):
    print(f"`{report['command']}` (onnxruntime {report['onnxruntime']}; 1-minute load average "
          f"{report['load_average_1min']['start']:.1f} at start, {report['load_average_1min']['end']:.1f} at end)\n")
    print("| model | threads | contender | median ms | min ms | vs sqopt fp32 | vs ort fp32 | vs ort quantize_dynamic |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in report["results"]:
        shape = "x".join(map(str, r["shape"]))
        if "error" in r:
            print(f"| {r['model']} {shape} | {r['threads']} | {r['contender']} | failed: {r['error']} | | | | |")
            continue
        print(f"| {r['model']} {shape} | {r['threads']} | {r['contender']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} "
              f"| {r.get('vs_sqopt_fp32', float('nan')):.2f}x | {r.get('vs_ort_fp32', float('nan')):.2f}x "
              f"| {r.get('vs_ort_dynamic', float('nan')):.2f}x |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,smollm2", help="comma-separated: minilm, smollm2")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per contender")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--sqopt", default=os.path.join(ROOT, ".build", "release", "sqopt"),
                        help="the sqopt binary (default .build/release/sqopt: swift build -c release)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the quantized models")
    parser.add_argument("--contenders", default=None,
                        help="a regular expression: time only the contenders whose label it matches")
    parser.add_argument("--work-dir", "--work", dest="work_dir", default=os.path.join(ROOT, "build", "bench"),
                        help="where the inputs and quantized models are cached (default build/bench)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the results as a Markdown table")
    args = parser.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    ort.set_default_logger_severity(3)
    load_before = os.getloadavg()
    if not os.path.exists(args.sqopt):
        raise SystemExit(f"bench_e2e: {args.sqopt} missing: run `swift build -c release`")
    rows = []
    for name in args.models.split(","):
        if name not in SHAPES:
            raise SystemExit(f"bench_e2e: unknown model '{name}' (minilm, smollm2)")
        rows += bench_model(name, args)
    report = {"command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
              "machine": platform.processor() or platform.machine(), "onnxruntime": ort.__version__,
              "runs": args.runs, "warmup": args.warmup,
              "load_average_1min": {"start": load_before[0], "end": os.getloadavg()[0]}, "results": rows}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    if args.markdown:
        print_markdown(report)
        return
    print(f"# {report['command']}  (onnxruntime {report['onnxruntime']}, load average "
          f"{load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end)")
    print(f"{'model':8} {'thr':>3}  {'contender':40} {'median ms':>10} {'min ms':>9} {'vs sqopt fp32':>13} {'vs ort fp32':>11} {'vs ort dyn':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:8} {r['threads']:>3}  {r['contender']:40} FAILED: {r['error']}")
            continue
        print(f"{r['model']:8} {r['threads']:>3}  {r['contender']:40} {r['median_ms']:10.1f} {r['min_ms']:9.1f}"
              f" {r.get('vs_sqopt_fp32', float('nan')):12.2f}x {r.get('vs_ort_fp32', float('nan')):10.2f}x"
              f" {r.get('vs_ort_dynamic', float('nan')):9.2f}x")


if __name__ == "__main__":
    main()
