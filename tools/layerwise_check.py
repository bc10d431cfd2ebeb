#!/usr/bin/env python3
"""Teacher-forced layer-by-layer check of sqopt's int8 interpreter against onnxruntime (and the
independent numpy reference) on the same QDQ file, plus the end-to-end figures that frame it.

Why layer by layer: end to end on a deep model, a 1-ulp difference in one float activation can
land on a rounding tie of a quantizer (x/Δ = 20.499998 vs 20.500002), flip one int8 value, and
be amplified by the layers after it; onnxruntime's own optimized and unoptimized sessions differ
by several percent on SmolLM2's logits for that reason (docs/accuracy.md). So each quantized
layer gets the *same* float input in every runtime:

  1. onnxruntime (ORT_DISABLE_ALL: Q, DQ and a float MatMul, the ONNX definition) runs the whole
     QDQ model once on one sample; the float activation entering every Q chain (the input of
     each QuantizeLinear, which the O1/O2 scale computation reads too) and every quantized
     MatMul/Gemm output are kept.
  2. onnx.utils.Extractor cuts one *layer bank* out of the model: inputs = those activations,
     outputs = the quantized MatMul/Gemm outputs, so the bank is a set of independent islands
     `x -> [scale] -> Q -> DQ -> MatMul(·, DQ(W_int8)) [-> + bias]` holding their weights and
     scales. The bank is checked: every node input is a bank input, an initializer or a bank
     value; every initializer the islands read is present and byte-identical; onnxruntime on
     the bank reproduces the full-model values exactly.
  3. onnxruntime runs the bank (unoptimized, and ORT_ENABLE_ALL for context); `sqopt run` runs
     it with the int8 kernels (the tool checks the plan ran no Q/DQ step: every activation
     Q→DQ and weight DQ was absorbed into an int8 GEMM); per layer, relative L2 of sqopt's
     output against onnxruntime's must be <= --rtol (1e-3).
  4. With --reference FP32_MODEL, the numpy reference (tools/fakequant_reference.py: its own
     calibration, smoothing and weight quantization, activations as Mul(Clip(Round(x/Δ)), Δ))
     is built from the fp32 model, the same islands are cut out of it by MatMul name and fed
     the same captured activations: sqopt against the reference, per layer, <= --ref-rtol.

Subcommands
  check QDQ.onnx --data SAMPLE --work DIR [--sqopt BIN] [--reference FP32 --calib DIR --policy P
        --weights W [--bmm] [--alpha A] [--scope S]] [--rtol R] [--json OUT]
        the whole layer-wise check; exit 1 when a layer is above its tolerance
  bank QDQ.onnx --data SAMPLE --work DIR      steps 1-2 and onnxruntime's bank outputs only
        (DIR/bank.onnx, DIR/test_data_set_0/input_K.pb, DIR/ort/*.npy, DIR/layers.json)
  e2e FP32.onnx QDQ.onnx --data DIR --work DIR [--sqopt BIN] [--json OUT]
        end to end: sqopt vs onnxruntime, onnxruntime optimized vs unoptimized, and each
        runtime against fp32 (cosine; for logits top-1 agreement and KL(fp32 || q))
  compare BANK_A BANK_B [--optimize] [--rtol R]
        onnxruntime on bank B fed bank A's inputs against bank A's outputs, layer by layer: two
        ONNX forms of one quantization (quantize{target=qdq} vs {target=onnxruntime})
  ties QDQ.onnx --data SAMPLE --work DIR [--sqopt BIN]
        free-running on the whole model: the first activation quantizer whose int8 output
        differs between sqopt and onnxruntime, its x / Δ on both sides, and the spread after it
  matrix [--models minilm,smollm2] [--sqopt BIN] [--markdown OUT]
        every policy x weight granularity (and O1/O3 with bmm=true) on the real models through
        the CLI pipeline, calibrated on build/real/MODEL/calib: check + e2e for each

  python tools/layerwise_check.py check /tmp/smollm2-o3.onnx --data build/real/smollm2/test_data_set_0 \\
      --work /tmp/bank-o3 --sqopt .build/release/sqopt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fakequant_reference as fq  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- basics

def safe_name(name: str) -> str:
    """The file name `sqopt run --output-dir` gives an output (RunCommand.swift)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def rel_l2(candidate: np.ndarray, reference: np.ndarray) -> float:
    c = candidate.astype(np.float64).ravel()
    r = reference.astype(np.float64).ravel()
    norm = np.linalg.norm(r)
    return float(np.linalg.norm(c - r) / norm) if norm > 0 else float(np.linalg.norm(c - r))


def session(model: onnx.ModelProto, optimize: bool) -> ort.InferenceSession:
    return fq.session(model, optimize=optimize)


def run_session(sess: ort.InferenceSession, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feed)))


def sqopt_binary(given: str | None) -> str:
    if given:
        return given
    for candidate in (REPO / ".build/release/sqopt", REPO / ".build/debug/sqopt"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit("error: no sqopt binary: pass --sqopt or run `swift build -c release --product sqopt`")


def sqopt_run(binary: str, model: Path, data: Path, out: Path) -> int:
    """Runs `sqopt run`; returns the number of plan steps it executed."""
    result = subprocess.run([binary, "run", str(model), "--data", str(data), "--output-dir", str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: sqopt run {model} failed:\n{result.stdout}{result.stderr}")
    steps = re.search(r"ran (\d+) steps", result.stdout)
    return int(steps.group(1)) if steps else -1


# ----------------------------------------------------------------------------- finding the layers

class Index:
    def __init__(self, model: onnx.ModelProto):
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output if o}
        self.consumers: dict[str, list] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def is_one(self, name: str) -> bool:
        t = self.inits.get(name)
        return t is not None and numpy_helper.to_array(t).size == 1 and float(numpy_helper.to_array(t).reshape(-1)[0]) == 1.0

    def quantized_activation(self, name: str) -> tuple[str, str | None] | None:
        """(x, None) when `name` is DQ(Q(x)); (x, Δ) for quantize{target=onnxruntime}'s dynamic
        forms DQ(Q(x, Δ, zp), 1, 128) and (before issue 13) DQ(Q(Div(x, Δ), 1, zp)), whose
        MatMul product is multiplied by Δ after; else None."""
        dq = self.producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        q = self.producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            return None
        div = self.producer.get(q.input[0])
        if div is not None and div.op_type == "Div" and self.is_one(q.input[1]):
            return div.input[0], div.input[1]
        if self.is_one(dq.input[1]) and q.input[1] != dq.input[1] and q.input[1] not in self.inits:
            return q.input[0], q.input[1]
        return q.input[0], None

    def scaled_output(self, product: str, scales: list[str]) -> str:
        """The value after the Mul(·, Δ) steps that follow `product` (one per dynamic operand)."""
        out, left = product, list(scales)
        while left:
            users = self.consumers.get(out, [])
            if len(users) != 1 or users[0].op_type != "Mul" or not set(users[0].input) & set(left):
                raise SystemExit(f"error: '{product}' is not followed by Mul by its scales {left}")
            left.remove(next(i for i in users[0].input if i in left))
            out = users[0].output[0]
        return out

    def quantized_weight(self, name: str) -> bool:
        dq = self.producer.get(name)
        return dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in self.inits


def quantized_layers(model: onnx.ModelProto) -> list[dict]:
    """Every MatMul/Gemm with a QDQ activation and a DQ(int8 initializer) weight (a linear), or
    two QDQ activations (an attention BMM). A layer's output is the MatMul's, or for the
    onnxruntime target's dynamic form the product after its Mul(·, Δ)."""
    index = Index(model)
    layers = []
    for n in model.graph.node:
        if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2:
            continue
        a = index.quantized_activation(n.input[0])
        if a is None:
            continue
        if index.quantized_weight(n.input[1]):
            output = index.scaled_output(n.output[0], [a[1]] if a[1] else [])
            layers.append({"name": n.name, "output": output, "kind": "linear", "inputs": [a[0]]})
        elif (b := index.quantized_activation(n.input[1])) is not None:
            output = index.scaled_output(n.output[0], [s for s in (a[1], b[1]) if s])
            layers.append({"name": n.name, "output": output, "kind": "bmm", "inputs": [a[0], b[0]]})
    return layers


def reference_layers(model: onnx.ModelProto) -> dict[str, list[str]]:
    """MatMul/Gemm name -> the activations entering its fake-quant chains in the numpy reference
    (`Mul(Clip(Round(Div(x, Δ))), Δ)`), for every quantized operand."""
    producer = {o: n for n in model.graph.node for o in n.output if o}

    def source(name):
        chain = ["Mul", "Clip", "Round", "Div"]
        node = producer.get(name)
        for op in chain:
            if node is None or node.op_type != op:
                return None
            if op == "Div":
                return node.input[0]
            node = producer.get(node.input[0])
        return None

    found = {}
    for n in model.graph.node:
        if n.op_type in ("MatMul", "Gemm"):
            xs = [source(i) for i in n.input[:2]]
            if xs[0] is not None:
                found[n.name] = [x for x in xs if x is not None]
    return found


# ----------------------------------------------------------------------------- the layer bank

def value_info(name: str, array: np.ndarray | None) -> onnx.ValueInfoProto:
    """A typed value; None: float32 of unknown shape."""
    if array is None:
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape))


def capture(model: onnx.ModelProto, names: list[str], sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One unoptimized onnxruntime run of the whole model with `names` as extra outputs."""
    existing = {o.name for o in model.graph.output}
    added = [n for n in names if n not in existing]
    for name in added:
        model.graph.output.append(helper.make_empty_tensor_value_info(name))
    try:
        values = run_session(session(model, optimize=False), sample)
    finally:
        for _ in added:
            model.graph.output.pop()
    return {n: values[n] for n in names}


def extract_bank(model: onnx.ModelProto, inputs: list[str], outputs: list[str],
                 captured: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The islands from `inputs` to `outputs`, checked to be self-contained (`captured` gives
    the values' types and shapes; an output it lacks is float32 of unknown shape)."""
    for name in inputs + outputs:
        model.graph.value_info.append(value_info(name, captured.get(name)))
    try:
        bank = onnx.utils.Extractor(model).extract_model(inputs, outputs)
    finally:
        for _ in inputs + outputs:
            model.graph.value_info.pop()
    known = set(inputs) | {i.name for i in bank.graph.initializer} | {o for n in bank.graph.node for o in n.output}
    dangling = sorted({i for n in bank.graph.node for i in n.input if i and i not in known})
    if dangling:
        raise SystemExit(f"error: the layer bank is not self-contained; it reads {dangling[:5]}")
    original = {i.name: i for i in model.graph.initializer}
    read = {i for n in bank.graph.node for i in n.input}
    kept = {i.name: i for i in bank.graph.initializer}
    missing = sorted(n for n in read if n in original and n not in kept)
    if missing:
        raise SystemExit(f"error: the extractor dropped initializers {missing[:5]}")
    for name, tensor in kept.items():
        if hashlib.sha1(tensor.SerializeToString()).digest() != hashlib.sha1(original[name].SerializeToString()).digest():
            raise SystemExit(f"error: initializer {name} changed in the layer bank")
    return bank


def ops(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def write_sample(folder: Path, names: list[str], values: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        (folder / f"input_{k}.pb").write_bytes(numpy_helper.from_array(values[name], name).SerializeToString())


def build_bank(qdq_path: Path, data: Path, work: Path) -> dict:
    """Steps 1-2: capture, extract, write the bank and its sample; onnxruntime's bank outputs."""
    work.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(qdq_path))
    sample = fq.load_samples(data, model)[0]
    layers = quantized_layers(model)
    if not layers:
        raise SystemExit(f"error: {qdq_path} has no quantized MatMul/Gemm")
    inputs = list(dict.fromkeys(x for layer in layers for x in layer["inputs"]))
    outputs = [layer["output"] for layer in layers]
    clock = time.perf_counter()
    captured = capture(model, inputs + outputs, sample)
    bank = extract_bank(model, inputs, outputs, captured)
    del model
    onnx.save(bank, str(work / "bank.onnx"))
    write_sample(work / "test_data_set_0", inputs, captured)
    feed = {name: captured[name] for name in inputs}
    ort_out = run_session(session(bank, optimize=False), feed)
    ort_opt = run_session(session(bank, optimize=True), feed)
    (work / "ort").mkdir(exist_ok=True)
    for layer in layers:
        y = layer["output"]
        np.save(work / "ort" / (safe_name(y) + ".npy"), ort_out[y])
        # The bank computes what the whole model computed (same ops, same inputs).
        layer["bank_vs_model"] = rel_l2(ort_out[y], captured[y])
        layer["ort_opt_vs_ort"] = rel_l2(ort_opt[y], ort_out[y])
    counts = ops(bank)
    info = {"model": str(qdq_path), "sample": str(data), "layers": layers, "inputs": inputs, "ops": counts,
            "nodes": len(bank.graph.node), "initializers": len(bank.graph.initializer),
            "seconds": round(time.perf_counter() - clock, 1)}
    (work / "layers.json").write_text(json.dumps(info, indent=1))
    return info


# ----------------------------------------------------------------------------- the reference islands

def reference_model(fp32_path: Path, calib: Path, args, cache: dict | None = None) -> onnx.ModelProto:
    """fakequant_reference's model for the policy; `cache` keeps the smoothed model and its
    statistics across policies (they do not depend on the policy)."""
    key = (str(fp32_path), str(calib), args.alpha, args.scope)
    if cache is not None and key in cache:
        smoothed, qstats = cache[key]
    else:
        model = onnx.load(str(fp32_path))
        samples = fq.load_samples(calib, model)
        stats = fq.calibrate(model, samples)
        smoothed, _ = fq.smooth(model, stats, args.alpha, args.scope)
        del model
        qstats = fq.calibrate(smoothed, samples)
        if cache is not None:
            cache.clear()
            cache[key] = (smoothed, qstats)
    return fq.fake_quantize(smoothed, qstats, args.policy, args.weights == "per-channel", args.bmm, False, None)


def reference_outputs(reference: onnx.ModelProto, layers: list[dict], captured: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference's islands fed sqopt's captured activations, by MatMul name."""
    sources = reference_layers(reference)
    feed, outputs = {}, []
    producer_out = {n.name: n.output[0] for n in reference.graph.node}
    for layer in layers:
        xs = sources.get(layer["name"])
        if xs is None or len(xs) != len(layer["inputs"]):
            raise SystemExit(f"error: the reference does not quantize {layer['name']} the same way ({xs})")
        for x_ref, x in zip(xs, layer["inputs"]):
            if x_ref in feed and not np.array_equal(feed[x_ref], captured[x]):
                raise SystemExit(f"error: {x_ref} would get two different activations")
            feed[x_ref] = captured[x]
        outputs.append(producer_out[layer["name"]])
    bank = extract_bank(reference, list(feed), outputs, feed)
    values = run_session(session(bank, optimize=False), feed)
    return {layer["output"]: values[producer_out[layer["name"]]] for layer in layers}


# ----------------------------------------------------------------------------- check

def save_reference(info: dict, work: Path, args) -> dict[str, np.ndarray]:
    """The numpy reference's layer outputs on the bank's inputs, also written to DIR/reference."""
    captured = {}
    for k, name in enumerate(info["inputs"]):
        tensor = onnx.TensorProto()
        tensor.ParseFromString((work / "test_data_set_0" / f"input_{k}.pb").read_bytes())
        captured[name] = numpy_helper.to_array(tensor)
    model = reference_model(Path(args.reference), Path(args.calib), args, getattr(args, "cache", None))
    reference = reference_outputs(model, info["layers"], captured)
    (work / "reference").mkdir(exist_ok=True)
    for name, value in reference.items():
        np.save(work / "reference" / (safe_name(name) + ".npy"), value)
    return reference


def command_check(args) -> int:
    work = Path(args.work)
    info = build_bank(Path(args.qdq), Path(args.data), work)
    layers = info["layers"]
    binary = sqopt_binary(args.sqopt)
    steps = sqopt_run(binary, work / "bank.onnx", work / "test_data_set_0", work / "sqopt")
    # The int8 path absorbs every Q and DQ; a MatMul run in float would execute its activation
    # Q and DQ as steps (weight DQs are folded either way).
    qdq = info["ops"].get("QuantizeLinear", 0) + info["ops"].get("DequantizeLinear", 0)
    info["steps"] = steps
    info["int8"] = 0 <= steps <= info["nodes"] - qdq
    reference = save_reference(info, work, args) if args.reference else None
    worst = {"sqopt_vs_ort": 0.0, "ref_vs_sqopt": 0.0, "ref_vs_ort": 0.0}
    for layer in layers:
        ort_y = np.load(work / "ort" / (safe_name(layer["output"]) + ".npy"))
        sq_y = np.load(work / "sqopt" / (safe_name(layer["output"]) + ".npy"))
        layer["sqopt_vs_ort"] = rel_l2(sq_y, ort_y)
        if reference is not None:
            layer["ref_vs_sqopt"] = rel_l2(sq_y, reference[layer["output"]])
            layer["ref_vs_ort"] = rel_l2(ort_y, reference[layer["output"]])
        for key in worst:
            if key in layer:
                worst[key] = max(worst[key], layer[key])
    worst["bank_vs_model"] = max(layer["bank_vs_model"] for layer in layers)
    worst["ort_opt_vs_ort"] = max(layer["ort_opt_vs_ort"] for layer in layers)
    info["worst"] = worst
    info["worst_layer"] = max(layers, key=lambda layer: layer["sqopt_vs_ort"])["name"]
    failures = []
    if not info["int8"]:
        failures.append(f"sqopt ran {steps} steps for {info['nodes']} nodes with {qdq} Q/DQ: some layer took the float path")
    if worst["bank_vs_model"] > 1e-6:
        failures.append(f"onnxruntime on the bank differs from the whole model ({worst['bank_vs_model']:.2e})")
    if worst["sqopt_vs_ort"] > args.rtol:
        failures.append(f"sqopt vs onnxruntime {worst['sqopt_vs_ort']:.2e} > {args.rtol} ({info['worst_layer']})")
    if reference is not None and worst["ref_vs_sqopt"] > args.ref_rtol:
        failures.append(f"sqopt vs the numpy reference {worst['ref_vs_sqopt']:.2e} > {args.ref_rtol}")
    info["failures"] = failures
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1))
    kinds = {k: sum(layer["kind"] == k for layer in layers) for k in ("linear", "bmm")}
    print(f"layer bank: {kinds['linear']} linears, {kinds['bmm']} bmms, {len(info['inputs'])} inputs, "
          f"{info['nodes']} nodes, {info['initializers']} initializers; sqopt ran {steps} steps (int8: {info['int8']})")
    if args.table:
        cols = ["sqopt_vs_ort", "ort_opt_vs_ort"] + (["ref_vs_sqopt"] if reference is not None else [])
        print("layer  " + "  ".join(cols))
        for layer in sorted(layers, key=lambda layer: -layer["sqopt_vs_ort"]):
            print(layer["name"] + "  " + "  ".join(f"{layer[c]:.2e}" for c in cols))
    print("worst: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()) + f" (sqopt vs ort at {info['worst_layer']})")
    for f in failures:
        print("FAIL: " + f)
    print("OK" if not failures else "MISMATCH")
    return 0 if not failures else 1


def command_compare(args) -> int:
    """onnxruntime on bank B fed bank A's captured inputs, per layer against onnxruntime's
    outputs of bank A: two ONNX forms of the same quantization (e.g. quantize{target=qdq} and
    {target=onnxruntime}) layer by layer, teacher-forced on the same activations."""
    a, b = Path(args.bank_a), Path(args.bank_b)
    info_a = json.loads((a / "layers.json").read_text())
    info_b = json.loads((b / "layers.json").read_text())
    if info_a["inputs"] != info_b["inputs"] or len(info_a["layers"]) != len(info_b["layers"]):
        raise SystemExit("error: the banks have different layers or inputs (not the same model and policy)")
    names = info_a["inputs"]
    feed = {name: numpy_helper.to_array(onnx.load_tensor(str(a / "test_data_set_0" / f"input_{k}.pb")))
            for k, name in enumerate(names)}
    out_b = run_session(session(onnx.load(str(b / "bank.onnx")), optimize=args.optimize), feed)
    worst, worst_layer = 0.0, ""
    for la, lb in zip(info_a["layers"], info_b["layers"]):
        if la["name"] != lb["name"]:
            raise SystemExit(f"error: layer {la['name']} of A is {lb['name']} in B")
        d = rel_l2(out_b[lb["output"]], np.load(a / "ort" / (safe_name(la["output"]) + ".npy")))
        if d > worst:
            worst, worst_layer = d, la["name"]
    print(f"{len(info_a['layers'])} layers: worst relative L2 of B vs A {worst:.2e} ({worst_layer})")
    ok = worst <= args.rtol
    print("OK" if ok else f"MISMATCH (> {args.rtol})")
    if args.json:
        Path(args.json).write_text(json.dumps({"layers": len(info_a["layers"]), "worst": worst, "worst_layer": worst_layer}))
    return 0 if ok else 1


def command_bank(args) -> int:
    info = build_bank(Path(args.qdq), Path(args.data), Path(args.work))
    if args.reference:
        save_reference(info, Path(args.work), args)
    print(f"{len(info['layers'])} layers, {len(info['inputs'])} inputs -> {args.work}/bank.onnx ({info['seconds']} s)")
    return 0


# ----------------------------------------------------------------------------- end to end

def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def against_fp32(q: np.ndarray, ref: np.ndarray, logits: bool) -> dict:
    m = {"cosine": fq.metrics(q, ref)["cosine"], "rel_l2": rel_l2(q, ref)}
    if logits:
        lp, lq = log_softmax(ref), log_softmax(q)
        m["kl"] = float((np.exp(lp) * (lp - lq)).sum(-1).mean())
        m["top1"] = float((ref.argmax(-1) == q.argmax(-1)).mean())
    return m


def end_to_end(fp32_path: Path, qdq_path: Path, data: Path, binary: str, work: Path) -> dict:
    """Per output, averaged over samples: each runtime against fp32, and the runtimes against each
    other (relative L2, worst sample)."""
    fp32 = onnx.load(str(fp32_path))
    samples = fq.load_samples(data, fp32)
    s_fp32 = session(fp32, optimize=False)
    del fp32
    qdq = onnx.load(str(qdq_path))
    s_ort, s_opt = session(qdq, optimize=False), session(qdq, optimize=True)
    del qdq
    folders = sorted((p for p in data.iterdir() if p.is_dir()), key=lambda p: fq._natural_key(p.name)) \
        if not any(data.glob("input_*.pb")) else [data]
    rows: dict[str, dict] = {}
    for k, (sample, folder) in enumerate(zip(samples, folders)):
        ref = run_session(s_fp32, sample)
        runs = {"ort": run_session(s_ort, sample), "ort_opt": run_session(s_opt, sample)}
        out = work / f"e2e-{k}"
        sqopt_run(binary, qdq_path, folder, out)
        runs["sqopt"] = {name: np.load(out / (safe_name(name) + ".npy")) for name in ref}
        for name, r in ref.items():
            logits = "logits" in name.lower()
            row = rows.setdefault(name, {"samples": 0})
            row["samples"] += 1
            for runtime, values in runs.items():
                for key, v in against_fp32(values[name], r, logits).items():
                    row.setdefault(runtime, {}).setdefault(key, []).append(v)
            for pair, (a, b) in {"sqopt_vs_ort": ("sqopt", "ort"), "ort_opt_vs_ort": ("ort_opt", "ort"),
                                 "sqopt_vs_ort_opt": ("sqopt", "ort_opt")}.items():
                row[pair] = max(row.get(pair, 0.0), rel_l2(runs[a][name], runs[b][name]))
    for row in rows.values():
        for runtime in ("ort", "ort_opt", "sqopt"):
            row[runtime] = {k: float(np.mean(v)) for k, v in row[runtime].items()}
    return rows


def command_e2e(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = end_to_end(Path(args.fp32), Path(args.qdq), Path(args.data), sqopt_binary(args.sqopt), work)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    for name, row in rows.items():
        print(f"{name} ({row['samples']} samples): sqopt vs ort rel L2 {row['sqopt_vs_ort']:.3e}, "
              f"ort optimized vs unoptimized {row['ort_opt_vs_ort']:.3e}")
        for runtime in ("ort", "ort_opt", "sqopt"):
            print(f"  {runtime:8s} vs fp32: " + ", ".join(f"{k} {v:.5f}" for k, v in row[runtime].items()))
    return 0


# ----------------------------------------------------------------------------- ties

def f32(value: np.float32) -> str:
    return np.format_float_positional(np.float32(value), unique=True)


def command_ties(args) -> int:
    """Free-running (not teacher-forced): where do sqopt's and onnxruntime's int8 activations first
    differ on the whole model, and by how much? Every activation QuantizeLinear's output, input
    and scale become graph outputs; both runtimes run the model end to end."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = onnx.load(args.qdq)
    inits = {i.name for i in model.graph.initializer}
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    names = list(dict.fromkeys(name for q in qs for name in (q.output[0], q.input[0], q.input[1]) if name not in inits))
    sample = fq.load_samples(Path(args.data), model)[0]
    ort_values = capture(model, names, sample)
    for name in names:
        model.graph.output.append(helper.make_empty_tensor_value_info(name))
    onnx.save(model, str(work / "probe.onnx"))
    del model
    sqopt_run(sqopt_binary(args.sqopt), work / "probe.onnx", Path(args.data), work / "probe")

    def sq(name):
        return np.load(work / "probe" / (safe_name(name) + ".npy"))

    first, rows = None, []
    for k, q in enumerate(qs):
        a, b = ort_values[q.output[0]].astype(np.int32), sq(q.output[0]).astype(np.int32)
        flips = int((a != b).sum())
        rows.append({"q": q.name, "flips": flips, "size": int(a.size), "max_step": int(np.abs(a - b).max(initial=0)),
                     "x_rel_l2": rel_l2(sq(q.input[0]), ort_values[q.input[0]])})
        if flips and first is None:
            x_o, x_s = ort_values[q.input[0]], sq(q.input[0])
            d_o = ort_values[q.input[1]] if q.input[1] in ort_values else None
            d_s = sq(q.input[1]) if q.input[1] in ort_values else None
            if d_o is None:
                d_o = d_s = np.array(numpy_helper.to_array(next(i for i in onnx.load(args.qdq, load_external_data=False)
                                                                  .graph.initializer if i.name == q.input[1])))
            where = list(zip(*np.nonzero(a != b)))[:5]
            first = {"index": k, "q": q.name, "flips": flips, "size": int(a.size),
                     "x_rel_l2_before": rows[-1]["x_rel_l2"], "examples": []}
            for pos in where:
                so = d_o[pos[:-1] + (0,)] if d_o.ndim == len(pos) else d_o.reshape(-1)[0]
                ss = d_s[pos[:-1] + (0,)] if d_s.ndim == len(pos) else d_s.reshape(-1)[0]
                # x / Δ in float32, as QuantizeLinear computes it (shortest float32 repr).
                first["examples"].append({"position": [int(i) for i in pos],
                                          "ort_x_over_scale": f32(np.float32(x_o[pos]) / np.float32(so)),
                                          "sqopt_x_over_scale": f32(np.float32(x_s[pos]) / np.float32(ss)),
                                          "ort_q": int(a[pos]), "sqopt_q": int(b[pos])})
    flipped = [r for r in rows if r["flips"]]
    result = {"quantizers": len(rows), "with_flips": len(flipped), "first": first, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"{len(rows)} activation quantizers; {len(flipped)} with int8 values that differ between sqopt and onnxruntime")
    if first:
        print(f"first: #{first['index']} {first['q']}: {first['flips']} of {first['size']} values; its input differed "
              f"by relative L2 {first['x_rel_l2_before']:.2e} before it")
        for e in first["examples"]:
            print(f"  at {e['position']}: x/scale onnxruntime {e['ort_x_over_scale']} -> {e['ort_q']}, "
                  f"sqopt {e['sqopt_x_over_scale']} -> {e['sqopt_q']}")
        last = rows[-1]
        print(f"last: {last['q']}: {last['flips']} of {last['size']} differ, input relative L2 {last['x_rel_l2']:.2e}")
    return 0


# ----------------------------------------------------------------------------- the matrix

CONFIGS = [("O1", "per-tensor", False), ("O1", "per-channel", False), ("O2", "per-tensor", False),
           ("O2", "per-channel", False), ("O3", "per-tensor", False), ("O3", "per-channel", False),
           ("O1", "per-channel", True), ("O3", "per-channel", True)]


def command_matrix(args) -> int:
    binary = sqopt_binary(args.sqopt)
    results = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="sqopt-layerwise-") as tmp:
        tmp = Path(tmp)
        for model_name in args.models.split(","):
            folder = REPO / "build/real" / model_name
            if not (folder / "model.onnx").exists():
                print(f"skip {model_name}: {folder}/model.onnx is absent (tools/build_*.py)")
                continue
            stats = tmp / f"{model_name}-stats.json"
            subprocess.run([binary, "--passes", "calibrate", "--calib", str(folder / "calib"), str(folder / "model.onnx"),
                            "--save-calib", str(stats), "-o", str(tmp / "unused.onnx"), "--force", "-q"], check=True)
            cache: dict = {}
            for policy, weights, bmm in CONFIGS:
                label = f"{policy} {weights}" + (" bmm" if bmm else "")
                spec = f"quantize{{policy={policy},weights={weights},target={args.target}" + (",bmm=true}" if bmm else "}")
                qdq = tmp / f"{model_name}.onnx"
                subprocess.run([binary, "--passes", f"smooth,{spec}", "--load-calib", str(stats),
                                str(folder / "model.onnx"), "-o", str(qdq), "--force", "-q"], check=True)
                ns = argparse.Namespace(qdq=str(qdq), data=str(folder / "test_data_set_0"), work=str(tmp / "bank"),
                                        sqopt=binary, reference=str(folder / "model.onnx"), calib=str(folder / "calib"),
                                        policy=policy, weights=weights, bmm=bmm, alpha=0.5, scope="norms",
                                        rtol=args.rtol, ref_rtol=args.ref_rtol, json=str(tmp / "check.json"), table=False)
                clock = time.perf_counter()
                ns.cache = cache
                status = command_check(ns)
                check = json.loads((tmp / "check.json").read_text())
                eval_dir = tmp / "eval"
                shutil.rmtree(eval_dir, ignore_errors=True)
                eval_dir.mkdir()
                for k in range(args.eval_samples):
                    (eval_dir / f"test_data_set_{k}").symlink_to(folder / "eval" / f"test_data_set_{k}")
                e2e = end_to_end(folder / "model.onnx", qdq, eval_dir, binary, tmp)
                failed |= status != 0
                results.append({"model": model_name, "config": label, "check": {k: check[k] for k in
                                ("worst", "worst_layer", "int8", "steps", "nodes", "failures")},
                                "linears": sum(layer["kind"] == "linear" for layer in check["layers"]),
                                "bmms": sum(layer["kind"] == "bmm" for layer in check["layers"]),
                                "e2e": e2e, "seconds": round(time.perf_counter() - clock, 1)})
                print(f"{model_name} {label}: layer-wise worst sqopt vs ort {check['worst']['sqopt_vs_ort']:.2e}, "
                      f"vs reference {check['worst']['ref_vs_sqopt']:.2e}, int8 {check['int8']} "
                      f"({results[-1]['seconds']} s)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown(results, args))
    return 1 if failed else 0


def markdown(results: list[dict], args) -> str:
    """The tables of docs/crosscheck.md §Measured."""
    lines = ["| model | config | layers (linear + bmm) | int8 path | sqopt vs ORT | numpy reference vs sqopt | ORT optimized vs ORT |",
             "|---|---|---:|---|---:|---:|---:|"]
    for r in results:
        w = r["check"]["worst"]
        lines.append(f"| {r['model']} | {r['config']} | {r['linears']} + {r['bmms']} | {'yes' if r['check']['int8'] else 'NO'} "
                     f"| {w['sqopt_vs_ort']:.1e} | {w['ref_vs_sqopt']:.1e} | {w['ort_opt_vs_ort']:.1e} |")
    lines += ["", "| model | config | output | sqopt vs ORT | ORT opt vs ORT | ORT vs fp32 | sqopt vs fp32 |",
              "|---|---|---|---:|---:|---|---|"]

    def fmt(m):
        parts = [f"cosine {m['cosine']:.4f}"] + ([f"KL {m['kl']:.4f}", f"top-1 {100 * m['top1']:.1f}%"] if "kl" in m else [])
        return ", ".join(parts)

    for r in results:
        for name, row in r["e2e"].items():
            lines.append(f"| {r['model']} | {r['config']} | {name} | {row['sqopt_vs_ort']:.1e} | {row['ort_opt_vs_ort']:.1e} "
                         f"| {fmt(row['ort'])} | {fmt(row['sqopt'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="the layer-wise check of one QDQ model")
    bank = sub.add_parser("bank", help="write the layer bank and onnxruntime's outputs")
    for p in (check, bank):
        p.add_argument("qdq")
        p.add_argument("--data", required=True, help="one sample folder")
        p.add_argument("--work", required=True, help="folder for the bank, its sample and outputs")
    for p in (check, bank):
        p.add_argument("--reference", metavar="FP32.onnx", help="also run the numpy reference built from it "
                       "(outputs in DIR/reference)")
        p.add_argument("--calib", help="calibration samples for the reference (those sqopt used)")
        p.add_argument("--policy", choices=["O1", "O2", "O3"], default="O1")
        p.add_argument("--weights", choices=["per-tensor", "per-channel"], default="per-channel")
        p.add_argument("--bmm", action="store_true")
        p.add_argument("--alpha", type=float, default=0.5)
        p.add_argument("--scope", choices=["norms", "all"], default="norms")
    check.add_argument("--sqopt")
    check.add_argument("--rtol", type=float, default=1e-3, help="largest relative L2 of sqopt vs onnxruntime per layer")
    check.add_argument("--ref-rtol", type=float, default=1e-2, help="largest relative L2 of sqopt vs the reference per layer")
    check.add_argument("--json")
    check.add_argument("--table", action="store_true", help="print every layer, worst first")
    e2e = sub.add_parser("e2e", help="end-to-end figures of one QDQ model")
    e2e.add_argument("fp32")
    e2e.add_argument("qdq")
    e2e.add_argument("--data", required=True, help="a sample folder or a folder of them")
    e2e.add_argument("--work", required=True)
    e2e.add_argument("--sqopt")
    e2e.add_argument("--json")
    ties = sub.add_parser("ties", help="free-running: where sqopt's and onnxruntime's int8 activations first differ")
    ties.add_argument("qdq")
    ties.add_argument("--data", required=True, help="one sample folder")
    ties.add_argument("--work", required=True)
    ties.add_argument("--sqopt")
    ties.add_argument("--json")
    compare = sub.add_parser("compare", help="two banks of one model (e.g. target=qdq and target=onnxruntime), layer by layer")
    compare.add_argument("bank_a")
    compare.add_argument("bank_b")
    compare.add_argument("--rtol", type=float, default=1e-3)
    compare.add_argument("--optimize", action="store_true", help="run bank B with onnxruntime's graph optimizations "
                         "(its fused integer kernels)")
    compare.add_argument("--json")
    matrix = sub.add_parser("matrix", help="every policy on the real models")
    matrix.add_argument("--models", default="minilm,smollm2")
    matrix.add_argument("--sqopt")
    matrix.add_argument("--rtol", type=float, default=1e-3)
    matrix.add_argument("--ref-rtol", type=float, default=1e-2)
    matrix.add_argument("--eval-samples", type=int, default=5)
    matrix.add_argument("--target", choices=["qdq", "onnxruntime"], default="qdq", help="quantize's target (the ONNX form)")
    matrix.add_argument("--json")
    matrix.add_argument("--markdown")
    args = parser.parse_args(argv)
    return {"check": command_check, "bank": command_bank, "compare": command_compare, "e2e": command_e2e, "ties": command_ties,
            "matrix": command_matrix}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
