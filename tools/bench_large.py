#!/usr/bin/env python3
"""Benchmark sqopt on a > 2 GiB LLaMA-like float16 model with external data (issue 16, item 4).

Generates a random-weight LLaMA decoder (TinyLlama-1.1B shapes by default: hidden 2048,
FFN 5632, 32 query / 4 kv heads, vocab 32000; 28 layers = 2.73 GB of float16 weights) with
tools/build_smollm2.py's graph builder, then runs the whole CLI pipeline on it

    sqopt --passes calibrate,smooth,quantize --calib DIR model.onnx -o out.onnx --external-data --time-passes

while polling /proc/PID/status (VmHWM: the kernel's peak RSS; RssAnon and RssFile split the
peak into heap and mapped-file pages), checks the result in onnxruntime (load it, run one
held-out sample, logits cosine against the float16 model's, each in a child process whose
peak RSS is recorded too), and measures calibration memory against the number of samples and
the sequence length on a smaller model of the same shapes (`--flat-layers`, default 4):
`--passes calibrate` with 2 vs 8 samples of 64 tokens and 4 samples of 32 vs 128 tokens.
The bar: peak RSS of the pipeline <= 1.5 x (output model + .data) + 1 GiB.

Generation streams: each weight is drawn (float32, seeded by its name), rounded to float16
and appended to `model.onnx.data` at a 4 KiB-aligned offset before the next is drawn, and
the initializer is an EXTERNAL TensorProto; the ModelProto itself never holds weight bytes
(so Python never holds the model twice; peak ≈ the token embedding in float32). The graph's
float constants, Casts, value_info and I/O are made float16 by tools/convert_float16.py's
Converter (its weight path is skipped: the initializers are float16 already). Outlier
channels are planted in the residual stream, i.e. in every RMSNorm's input: a few channels of
the token embedding are ±`--outlier` (default 20, the other channels have std 0.02), and the
residual branches' output projections are scaled by 1/sqrt(2 layers) so they persist; after
the norms, those channels are ~40x the others in every linear's input.

    .venv/bin/python tools/bench_large.py                          # generate (once) + measure, build/large/
    .venv/bin/python tools/bench_large.py --markdown               # the table as markdown
    .venv/bin/python tools/bench_large.py --layers 2 --flat-layers 1 --skip-ort   # quick smoke run
    .venv/bin/python tools/bench_large.py --generate-only
    .venv/bin/python tools/bench_large.py --sqopt .build/release/sqopt --keep-output

Models are reused when `model.onnx` and its `.data` exist with the same configuration
(`config.json` beside them); `--regenerate` forces a rebuild. The pipeline's output is
deleted after the onnxruntime check unless `--keep-output`. Not part of the test suite:
the full run needs ~5 GB of disk and about 10 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_smollm2  # noqa: E402
import convert_float16  # noqa: E402
import realmodels  # noqa: E402
from build_smollm2 import LlamaConfig  # noqa: E402
from realmodels import GraphBuilder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "large"
DEFAULT_SQOPT = Path("/tmp/sqopt-main-release")
GIB = 1 << 30
ALIGN = 4096


# Generation ---------------------------------------------------------------------------------

class StreamingBuilder(GraphBuilder):
    """A GraphBuilder whose initializers go straight to one external-data file as float16."""

    def __init__(self, data_path: Path) -> None:
        super().__init__()
        self.location = data_path.name
        self.file = open(data_path, "wb")
        self.bytes = 0

    def initializer(self, name: str, array: np.ndarray) -> str:
        values = np.ascontiguousarray(array, dtype=np.float16 if array.dtype == np.float32 else array.dtype)
        offset = -self.file.tell() % ALIGN + self.file.tell()
        self.file.write(b"\0" * (offset - self.file.tell()))
        self.file.write(memoryview(values).cast("B"))
        t = TensorProto()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(values.dtype)
        t.dims.extend(values.shape)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", str(offset)), ("length", str(values.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(t)
        self.bytes += values.nbytes
        return name

    def close(self) -> None:
        self.file.close()


class RandomWeights:
    """The GGUF-named weights build_smollm2.build_graph asks for, random and seeded by name.

    Linears N(0, 0.02) ([out, in], torch layout), o_proj/down_proj scaled by 1/sqrt(2 layers);
    norm weights N(1, 0.05); the embedding N(0, 0.02) with `outliers` channels set to ±`outlier`.
    Embeddings are tied (no `output.weight`): build_graph then stores the transposed embedding
    as lm_head.weight, a second copy, as exporters do."""

    def __init__(self, c: LlamaConfig, seed: int, outliers: list[int], outlier: float) -> None:
        q, kv = c.heads * c.head_dim, c.kv_heads * c.head_dim
        self.shapes = {"token_embd.weight": (c.vocab, c.hidden), "output_norm.weight": (c.hidden,)}
        for i in range(c.layers):
            self.shapes |= {f"blk.{i}.attn_norm.weight": (c.hidden,), f"blk.{i}.ffn_norm.weight": (c.hidden,),
                            f"blk.{i}.attn_q.weight": (q, c.hidden), f"blk.{i}.attn_k.weight": (kv, c.hidden),
                            f"blk.{i}.attn_v.weight": (kv, c.hidden), f"blk.{i}.attn_output.weight": (c.hidden, q),
                            f"blk.{i}.ffn_gate.weight": (c.ffn, c.hidden), f"blk.{i}.ffn_up.weight": (c.ffn, c.hidden),
                            f"blk.{i}.ffn_down.weight": (c.hidden, c.ffn)}
        self.seed, self.outliers, self.outlier = seed, outliers, outlier
        self.residual_scale = 1.0 / np.sqrt(2 * c.layers)

    def __contains__(self, name: str) -> bool:
        return name in self.shapes

    def __getitem__(self, name: str) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        shape = self.shapes[name]
        if name.endswith("norm.weight"):
            return (1.0 + 0.05 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        w = rng.standard_normal(shape, dtype=np.float32)
        w *= 0.02 * (self.residual_scale if name.endswith(("attn_output.weight", "ffn_down.weight")) else 1.0)
        if name == "token_embd.weight":
            signs = np.where(np.arange(len(self.outliers)) % 2 == 0, 1.0, -1.0).astype(np.float32)
            w[:, self.outliers] = signs * self.outlier
        return w

    def unpermuted(self, name: str, heads: int) -> np.ndarray:
        return self[name]  # random: nothing to undo


def model_config(args) -> LlamaConfig:
    return LlamaConfig(layers=args.layers, hidden=args.hidden, ffn=args.ffn, heads=args.heads,
                       kv_heads=args.kv_heads, head_dim=args.hidden // args.heads, rope_theta=1e4,
                       rms_eps=1e-5, vocab=args.vocab, context=args.context)


def generate(folder: Path, c: LlamaConfig, args, calib_sets: dict[str, tuple[int, int]]) -> dict:
    """Writes folder/model.onnx(.data), the calibration sets and eval/test_data_set_0; reuses
    an existing model with the same configuration."""
    model_path, data_path = folder / "model.onnx", folder / "model.onnx.data"
    rng = np.random.default_rng(args.seed)
    outliers = sorted(rng.choice(c.hidden, size=args.outlier_channels, replace=False).tolist())
    config = {"llama": asdict(c), "seed": args.seed, "outlier_channels": outliers, "outlier": args.outlier}
    config_path = folder / "config.json"
    fresh = not (model_path.exists() and data_path.exists() and config_path.exists()
                 and json.loads(config_path.read_text()) == config) or args.regenerate
    info = {"generated": fresh, "generate_seconds": None}
    if fresh:
        folder.mkdir(parents=True, exist_ok=True)
        config_path.unlink(missing_ok=True)
        started = time.perf_counter()
        b = StreamingBuilder(data_path)
        try:
            build_smollm2.build_graph(RandomWeights(c, args.seed, outliers, args.outlier), c, c.layers,
                                      reciprocal=False, builder=b)
        finally:
            b.close()
        model = b.model("llama_like", f"random-weight LLaMA-like decoder {asdict(c)}, float16, outlier "
                                      f"channels {outliers}; built by tools/bench_large.py")
        # float constants, Casts, value_info and I/O to float16 (the weights already are)
        converter = convert_float16.Converter("float16", None)
        converter.convert(model)
        onnx.save(model, str(model_path))
        onnx.checker.check_model(str(model_path))
        info["generate_seconds"] = time.perf_counter() - started
        info["clamped"] = converter.clamped
        config_path.write_text(json.dumps(config, indent=1) + "\n")
    for name, (samples, tokens) in calib_sets.items():
        if not (folder / name / f"test_data_set_{samples - 1}").exists():
            write_calib(folder / name, c.vocab, samples, tokens, seed=args.seed + samples * 1000 + tokens)
    if not (folder / "eval" / "test_data_set_0").exists():
        write_calib(folder / "eval", c.vocab, 1, args.tokens, seed=args.seed + 7)
    info["weights_bytes"] = data_path.stat().st_size
    info["outliers"] = outliers
    return info


def write_calib(folder: Path, vocab: int, samples: int, tokens: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(samples):
        ids = rng.integers(0, vocab, size=(1, tokens), dtype=np.int64)
        realmodels.write_test_data_set(folder / f"test_data_set_{i}", [("input_ids", ids)])


# Measuring ----------------------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process in bytes ({} once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) * 1024
    return values


@dataclass
class Measured:
    command: list[str]
    returncode: int
    seconds: float
    peak_rss: int          # VmHWM at the last poll
    peak_anon: int         # largest RssAnon seen
    peak_file: int         # largest RssFile seen
    stdout: str
    stderr: str
    timeline: list[tuple[float, int, int, int]]  # (seconds, VmRSS, RssAnon, RssFile) every poll


def measure(command: list[str], interval: float = 0.1, echo: bool = True) -> Measured:
    """Runs `command`, polling its /proc status; VmHWM is read until the process exits."""
    if echo:
        print("$ " + " ".join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()))
               for k, s in (("stdout", process.stdout), ("stderr", process.stderr))]
    for r in readers:
        r.start()
    peak = anon = file = 0
    timeline = []
    while process.poll() is None:
        status = proc_status(process.pid)
        if status:
            peak = max(peak, status.get("VmHWM", 0))
            anon = max(anon, status.get("RssAnon", 0))
            file = max(file, status.get("RssFile", 0))
            timeline.append((time.perf_counter() - started, status.get("VmRSS", 0),
                             status.get("RssAnon", 0), status.get("RssFile", 0)))
        time.sleep(interval)
    seconds = time.perf_counter() - started
    for r in readers:
        r.join()
    return Measured(command, process.returncode, seconds, peak, anon, file,
                    out.get("stdout", ""), out.get("stderr", ""), timeline)


def files_size(model: Path) -> int:
    data = model.with_name(model.name + ".data")
    return model.stat().st_size + (data.stat().st_size if data.exists() else 0)


def ort_logits_child(model: str, dataset: str, out: str) -> int:
    """Child process: load MODEL in onnxruntime, run DATASET, save logits as float32 .npy."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    started = time.perf_counter()
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    loaded = time.perf_counter()
    inputs, _ = realmodels.read_test_data_set(Path(dataset))
    logits = session.run(["logits"], inputs)[0]
    np.save(out, logits.astype(np.float32))
    print(json.dumps({"load_seconds": loaded - started, "run_seconds": time.perf_counter() - loaded}))
    return 0


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def status_line(m: Measured) -> str:
    return (f"exit {m.returncode}, {m.seconds:.1f} s, peak RSS {gb(m.peak_rss)} "
            f"(largest anon {gb(m.peak_anon)}, file-backed {gb(m.peak_file)})")


def run_pipeline(args, folder: Path, calib: str, passes: str, out: Path, extra=()) -> Measured:
    for stale in (out, out.with_name(out.name + ".data")):
        stale.unlink(missing_ok=True)
    command = [str(args.sqopt), "--passes", passes, "--calib", str(folder / calib), str(folder / "model.onnx"),
               "-o", str(out), "--external-data", "--time-passes", *extra]
    m = measure(command)
    print(f"  {status_line(m)}", file=sys.stderr)
    if m.returncode != 0:
        print(m.stdout + m.stderr, file=sys.stderr)
    return m


def ort_check(args, reference: Path, candidate: Path, dataset: Path, scratch: Path) -> dict:
    """Both models in onnxruntime (one child process each): peak RSS, load/run time, cosine."""
    result = {}
    logits = {}
    for label, model in (("fp16", reference), ("int8", candidate)):
        out = scratch / f"logits-{label}.npy"
        m = measure([sys.executable, __file__, "--ort-logits", str(model), str(dataset), str(out)])
        if m.returncode != 0:
            result[label] = {"error": m.stderr.strip().splitlines()[-1] if m.stderr.strip() else "failed"}
            print(m.stderr, file=sys.stderr)
            continue
        times = json.loads(m.stdout.strip().splitlines()[-1])
        result[label] = {"peak_rss": m.peak_rss, **times}
        logits[label] = np.load(out).ravel().astype(np.float64)
        out.unlink()
    if len(logits) == 2:
        a, b = logits["fp16"], logits["int8"]
        result["cosine"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        result["relative_l2"] = float(np.linalg.norm(a - b) / np.linalg.norm(a))
        # Random weights: every position's logits share one large component (the planted
        # outlier channels are the same for every token); the part that depends on the
        # token is what int8 noise must be measured against. The top logits of a random
        # model are near ties, so argmax agreement says little.
        a2, b2 = a.reshape(-1, args.vocab), b.reshape(-1, args.vocab)
        common = a2.mean(axis=0)
        result["relative_l2_token_part"] = float(np.linalg.norm(b2 - a2) / np.linalg.norm(a2 - common))
        result["top1"] = float(np.mean(a2.argmax(-1) == b2.argmax(-1)))
        result["finite"] = bool(np.isfinite(b).all())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="work folder (default: build/large)")
    parser.add_argument("--sqopt", type=Path, default=DEFAULT_SQOPT, help="sqopt binary (default: %(default)s)")
    parser.add_argument("--layers", type=int, default=28, help="decoder layers of the large model (default 28: 2.73 GB)")
    parser.add_argument("--flat-layers", type=int, default=4, help="layers of the calibration-flatness model")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--ffn", type=int, default=5632)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--context", type=int, default=2048, help="RoPE table length")
    parser.add_argument("--samples", type=int, default=4, help="calibration samples of the large run")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per calibration sample")
    parser.add_argument("--outlier-channels", type=int, default=4)
    parser.add_argument("--outlier", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the models even if present")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--skip-large", action="store_true", help="only the calibration-flatness part")
    parser.add_argument("--skip-flat", action="store_true", help="only the large run")
    parser.add_argument("--skip-ort", action="store_true", help="no onnxruntime check")
    parser.add_argument("--keep-output", action="store_true", help="keep the pipeline's output model")
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--ort-logits", nargs=3, metavar=("MODEL", "DATASET", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ort_logits:
        return ort_logits_child(*args.ort_logits)

    report: dict = {"machine": f"{os.cpu_count()} cores, shared with a CI run (timings on a loaded machine)"}
    rows: list[tuple[str, str]] = []
    ok = True
    big_config = model_config(args)
    large = args.out / f"llama-{args.layers}l"
    if not args.skip_large:
        info = generate(large, big_config, args, {"calib": (args.samples, args.tokens)})
        report["large_model"] = info
        print(f"model {large / 'model.onnx'}: {gb(files_size(large / 'model.onnx'))} "
              f"(generated in {info['generate_seconds'] or 0:.0f} s)" if info["generated"] else
              f"model {large / 'model.onnx'}: {gb(files_size(large / 'model.onnx'))} (reused)", file=sys.stderr)
    if not args.skip_flat:
        args_flat = argparse.Namespace(**{**vars(args), "layers": args.flat_layers})
        flat = args.out / f"llama-{args.flat_layers}l"
        flat_sets = {"calib-n2-t64": (2, 64), "calib-n8-t64": (8, 64),
                     "calib-n4-t32": (4, 32), "calib-n4-t128": (4, 128)}
        report["flat_model"] = generate(flat, model_config(args_flat), args_flat, flat_sets)
    if args.generate_only:
        return 0

    if not args.skip_large:
        out = large / "out" / "model.sq-w8a8.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        m = run_pipeline(args, large, "calib", "calibrate,smooth,quantize", out)
        input_size = files_size(large / "model.onnx")
        output_size = files_size(out) if m.returncode == 0 else 0
        bar = 1.5 * output_size + GIB
        passed = m.returncode == 0 and m.peak_rss <= bar
        ok &= passed
        report["pipeline"] = {"command": " ".join(m.command), "returncode": m.returncode, "seconds": m.seconds,
                              "peak_rss": m.peak_rss, "peak_anon": m.peak_anon, "peak_file": m.peak_file,
                              "input_bytes": input_size, "output_bytes": output_size, "bar_bytes": bar,
                              "passed": passed, "stdout": m.stdout, "stderr": m.stderr,
                              "timeline": m.timeline[::5]}
        print(m.stdout + m.stderr, file=sys.stderr)
        rows += [("model", f"LLaMA-like, {args.layers} layers, hidden {args.hidden}, FFN {args.ffn}, "
                           f"{args.heads}/{args.kv_heads} heads, vocab {args.vocab}, float16, external data"),
                 ("input size (model.onnx + .data)", gb(input_size)),
                 ("output size (model + .data)", gb(output_size)),
                 ("calibration", f"{args.samples} samples x {args.tokens} tokens"),
                 ("sqopt exit code", str(m.returncode)),
                 ("wall time", f"{m.seconds:.1f} s"),
                 ("peak RSS (VmHWM)", f"{gb(m.peak_rss)} ({m.peak_rss / max(input_size, 1):.2f}x input, "
                                      f"{m.peak_rss / max(output_size, 1):.2f}x output)"),
                 ("largest RssAnon / RssFile seen", f"{gb(m.peak_anon)} / {gb(m.peak_file)}"),
                 ("bar: 1.5 x output + 1 GiB", gb(int(bar))),
                 ("result", ("PASS" if passed else "FAIL") + f" (peak RSS {m.peak_rss / bar:.2f}x the bar)")]
        if m.returncode == 0 and not args.skip_ort:
            check = ort_check(args, large / "model.onnx", out, large / "eval" / "test_data_set_0", out.parent)
            report["onnxruntime"] = check
            for label in ("fp16", "int8"):
                r = check.get(label, {})
                rows.append((f"onnxruntime, {label} model",
                             r["error"] if "error" in r else
                             f"loads in {r['load_seconds']:.1f} s, runs {args.tokens} tokens in "
                             f"{r['run_seconds']:.1f} s, peak RSS {gb(r['peak_rss'])}"))
            if "cosine" in check:
                rows.append(("logits int8 vs fp16 (onnxruntime, 1 held-out sample)",
                             f"1 - cosine {1 - check['cosine']:.2e}, relative L2 error {check['relative_l2']:.2e} "
                             f"({check['relative_l2_token_part']:.2e} of the token-dependent part), "
                             f"same argmax at {check['top1']:.0%} of positions (near-tied random logits)"
                             + ("" if check["finite"] else " (NOT finite)")))
            ok &= "cosine" in check
        if not args.keep_output:
            for f in (out, out.with_name(out.name + ".data")):
                f.unlink(missing_ok=True)

    flat_rows = []
    if not args.skip_flat:
        flat = args.out / f"llama-{args.flat_layers}l"
        scratch = flat / "out" / "calib-only.onnx"
        scratch.parent.mkdir(parents=True, exist_ok=True)
        report["flatness"] = {}
        for name in ("calib-n2-t64", "calib-n8-t64", "calib-n4-t32", "calib-n4-t128"):
            m = run_pipeline(args, flat, name, "calibrate", scratch, ["--save-calib", str(scratch.parent / "stats.json")])
            samples, tokens = name.split("-")[1:]
            report["flatness"][name] = {"peak_rss": m.peak_rss, "seconds": m.seconds, "returncode": m.returncode}
            flat_rows.append((samples[1:], tokens[1:], gb(m.peak_rss), f"{m.seconds:.1f} s", m.returncode))
            for f in (scratch, scratch.with_name(scratch.name + ".data")):
                f.unlink(missing_ok=True)
        report["flat_model_bytes"] = files_size(flat / "model.onnx")

    if args.markdown:
        if rows:
            print("| | |\n|---|---|")
            for k, v in rows:
                print(f"| {k} | {v} |")
        if flat_rows:
            print(f"\nCalibration only (`--passes calibrate`), {args.flat_layers}-layer model "
                  f"({gb(report['flat_model_bytes'])}):\n")
            print("| samples | tokens | peak RSS | wall time | exit |\n|---|---|---|---|---|")
            for r in flat_rows:
                print("| " + " | ".join(str(x) for x in r) + " |")
    else:
        for k, v in rows:
            print(f"{k:42} {v}")
        if flat_rows:
            print(f"calibration only, {args.flat_layers}-layer model ({gb(report['flat_model_bytes'])}):")
            for r in flat_rows:
                print(f"  {r[0]} samples x {r[1]} tokens: peak RSS {r[2]}, {r[3]}, exit {r[4]}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
