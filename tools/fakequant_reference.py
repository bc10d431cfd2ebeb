#!/usr/bin/env python3
"""An independent numpy + onnxruntime implementation of sqopt's SmoothQuant math, to check sqopt.

It shares no code with sqopt. From an fp32 ONNX model and calibration samples it builds a
*reference model* that computes the same function as sqopt's `calibrate,smooth,quantize` output,
but written with float ops only (no QuantizeLinear/DequantizeLinear):

  calibration   onnxruntime runs the model with every linear input (MatMul/Gemm with a constant
                weight) and every attention-MatMul operand added as graph outputs; numpy reduces
                per-channel (last axis) min/max and per-tensor min/max.
  smoothing     groups = the linears reading one activation X; s_j = max|X_j|^a / max(max|W_j|,
                1e-5)^(1-a), s_j = max(s_j, 1e-5), s_j = 1 for dead channels; in float64, cast
                to float32. Weight rows * s; 1/s folded into the producer (LayerNormalization
                gamma/beta, SimplifiedLayerNormalization/RMSNormalization gamma, Mul by a
                per-channel constant, or the Mul+Add tail of a decomposed norm) when every
                consumer of X is one of the group's linears, else an inserted Mul(X, 1/s).
  quantization  weights: q = clip(round_half_even(w / d), -127, 127) with d = absmax / 127 (per
                tensor or per output column), stored dequantized (q * d) as float32.
                activations: Mul(Clip(Round(Div(x, d)), -128, 127), d) where d is
                  O3  max(absmax_calibrated / 127, FLT_MIN)         (constant; recalibrated on
                      the smoothed model)
                  O2  max(ReduceMax(|x|) / 127, FLT_MIN)            (one per run)
                  O1  max(ReduceMax(|x|, axis=-1) / 127, FLT_MIN)   (one per token; for the
                      Kᵀ-like operand of an attention MatMul, per column over axis -2; operands
                      whose contracted dim is dynamic fall back to O2)
                The LM head (a linear whose output reaches a graph output through bias/reshape
                steps only) is smoothed and quantized too, as by sqopt by default; --no-lm-head
                keeps it float. --scope foldable (the default, as sqopt's): norm outputs plus
                inputs whose producer absorbs 1/s (down_proj via up_proj); norms; all.

Subcommands
  run MODEL --calib DIR --data DIR [options]   build the reference, run it on DIR's samples;
      --compare CANDIDATE.onnx                   also run CANDIDATE (e.g. sqopt's output) and
                                                 report per-output errors; exit 1 above --rtol
      --save-model OUT.onnx  --json             keep the reference model; print JSON
      --save-candidate-outputs DIR              CANDIDATE's onnxruntime outputs, DIR/<k>/<output>.npy
  stats MODEL --calib DIR --json OUT            the calibration statistics this tool computes
  ort-scales MODEL --calib DIR --json OUT       the activation scales onnxruntime quantize_static
                                                (QDQ, MinMax, ActivationSymmetric) computes

Samples: DIR/test_data_set_*/input_N.pb (graph-input order) or DIR/<sample>/<INPUT>.npy.

  python tools/fakequant_reference.py run models/tiny-opt/model.onnx --calib models/tiny-opt \\
      --data models/tiny-opt --policy O3 --compare /tmp/tiny-opt-o3.onnx
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

FLT_MIN = np.float32(np.finfo(np.float32).tiny)
NORM_OPS = {"LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization",
            "SkipLayerNormalization", "SkipSimplifiedLayerNormalization"}
PASS_THROUGH = {"Identity", "Reshape", "Cast", "Transpose", "Squeeze", "Unsqueeze", "Flatten"}


# ----------------------------------------------------------------------------- samples

def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_samples(folder: Path, model: onnx.ModelProto) -> list[dict[str, np.ndarray]]:
    """Samples of a calibration / data folder, in natural folder order."""
    init_names = {i.name for i in model.graph.initializer}
    input_names = [i.name for i in model.graph.input if i.name not in init_names]

    def one(d: Path):
        pbs = sorted(d.glob("input_*.pb"), key=lambda p: _natural_key(p.name))
        if pbs:
            sample = {}
            for p in pbs:
                t = onnx.TensorProto()
                t.ParseFromString(p.read_bytes())
                sample[input_names[int(p.stem.split("_")[1])]] = numpy_helper.to_array(t)
            return sample
        npys = sorted(d.glob("*.npy"))
        return {p.stem: np.load(p) for p in npys} if npys else None

    own = one(folder)
    if own:
        return [own]
    samples = [s for d in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name))
               if (s := one(d))]
    if not samples:
        raise SystemExit(f"error: no samples in {folder}")
    return samples


def session(model: onnx.ModelProto, optimize: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                         else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.log_severity_level = 3
    if model.ByteSize() < 1_900_000_000:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path), save_as_external_data=True)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# ----------------------------------------------------------------------------- graph facts

class Graph:
    """Index of an ONNX graph: initializers, producers, consumers."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        g = model.graph
        self.inits = {i.name: i for i in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for n in g.node:
            for k, name in enumerate(n.input):
                self.consumers.setdefault(name, []).append((n, k))
        self.outputs = {o.name for o in g.output}

    def array(self, name):
        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None

    def is_const(self, name):
        return name in self.inits

    def linear_weight(self, node):
        """(weight [K, N] as stored, transposed) when node is a linear layer, else None."""
        if node.op_type not in ("MatMul", "Gemm") or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
            return None
        if self.is_const(node.input[0]) or not self.is_const(node.input[1]):
            return None
        w = self.array(node.input[1])
        if w.dtype != np.float32 or w.ndim != 2:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm" and attrs.get("transA", 0):
            return None
        return w, node.op_type == "Gemm" and bool(attrs.get("transB", 0))

    def linears(self):
        return [n for n in self.model.graph.node if self.linear_weight(n) is not None]

    def bmms(self):
        return [n for n in self.model.graph.node if n.op_type == "MatMul" and n.domain in ("", "ai.onnx")
                and not self.is_const(n.input[0]) and not self.is_const(n.input[1])]

    def per_channel_const(self, name, channels):
        a = self.array(name)
        return a is not None and a.dtype == np.float32 and a.size == channels and a.ndim >= 1 and a.shape[-1] == channels

    def scale_operand(self, node, channels):
        if node is None or node.op_type != "Mul" or len(node.input) != 2:
            return None
        for i in (0, 1):
            if self.per_channel_const(node.input[i], channels) and not self.is_const(node.input[1 - i]):
                return i
        return None

    def is_norm_output(self, x, channels):
        p = self.producer.get(x)
        if p is None:
            return False
        if p.op_type in NORM_OPS or self.scale_operand(p, channels) is not None:
            return True
        if p.op_type == "Add" and len(p.input) == 2:
            for i in (0, 1):
                if self.per_channel_const(p.input[i], channels) and \
                        self.scale_operand(self.producer.get(p.input[1 - i]), channels) is not None:
                    return True
        return False

    def fold_params(self, x, group, channels):
        """[(node, input index)] of the constants 1/s folds into, or None when a Mul is needed."""
        if x in self.outputs:
            return None
        names = {id(n) for n in group}
        if any(k != 0 or id(n) not in names for n, k in self.consumers.get(x, [])):
            return None
        p = self.producer.get(x)
        if p is None or p.output[0] != x:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in p.attribute}
        if p.op_type == "LayerNormalization":
            if attrs.get("axis", -1) != -1 or not self.per_channel_const(p.input[1], channels):
                return None
            has_beta = len(p.input) > 2 and p.input[2] != ""
            if has_beta and not self.per_channel_const(p.input[2], channels):
                return None
            return [(p, 1)] + ([(p, 2)] if has_beta else [])
        if p.op_type in ("SimplifiedLayerNormalization", "RMSNormalization"):
            if attrs.get("axis", -1) != -1 or not self.per_channel_const(p.input[1], channels):
                return None
            return [(p, 1)]
        gamma = self.scale_operand(p, channels)
        if gamma is not None:
            return [(p, gamma)]
        if p.op_type == "Add" and len(p.input) == 2:
            for b in (0, 1):
                y = p.input[1 - b]
                mul = self.producer.get(y)
                if not self.per_channel_const(p.input[b], channels) or self.is_const(y) or mul is None:
                    continue
                if len(self.consumers.get(y, [])) != 1 or y in self.outputs:
                    continue
                gamma = self.scale_operand(mul, channels)
                if gamma is not None:
                    return [(mul, gamma), (p, b)]
        if p.op_type == "Mul" and len(p.input) == 2:
            # Mul(a, L(x)) with L a linear read only by this Mul (SwiGLU's up_proj): fold into
            # L's output columns; marked by index -1.
            for i in (0, 1):
                b = p.input[i]
                lin = self.producer.get(b)
                if self.is_const(b) or lin is None or self.linear_weight(lin) is None:
                    continue
                w, t = self.linear_weight(lin)
                if (w.shape[0] if t else w.shape[1]) != channels or len(self.consumers.get(b, [])) != 1 \
                        or b in self.outputs or lin.output[0] != b:
                    continue
                return [(lin, -1)]
        return None

    def output_heads(self):
        heads = []
        for n in self.linears():
            v = n.output[0]
            while True:
                if v in self.outputs:
                    heads.append(n)
                    break
                users = self.consumers.get(v, [])
                if len(users) != 1 or users[0][0].domain not in ("",):
                    break
                nxt, k = users[0]
                if nxt.op_type in PASS_THROUGH and k == 0:
                    v = nxt.output[0]
                elif nxt.op_type in ("Add", "Sub", "Mul", "Div") and any(
                        i != v and self.is_const(i) for i in nxt.input):
                    v = nxt.output[0]
                else:
                    break
        return heads


# ----------------------------------------------------------------------------- calibration

def observed_values(g: Graph) -> list[str]:
    names = []
    for n in g.model.graph.node:
        if g.linear_weight(n) is not None:
            cands = [n.input[0]]
        elif n in g.bmms():
            cands = [n.input[0], n.input[1]]
        else:
            continue
        names += [c for c in cands if c not in names and not g.is_const(c)]
    return names


def calibrate(model: onnx.ModelProto, samples) -> dict[str, dict]:
    """name -> {cmin, cmax (None when the last axis varied), min, max, dims (-1 = varied)}."""
    g = Graph(model)
    names = observed_values(g)
    probe = copy.deepcopy(model)
    existing = {o.name for o in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    sess = session(probe)
    stats: dict[str, dict] = {}
    for sample in samples:
        values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, sample)))
        for name in names:
            x = values[name].astype(np.float32)
            flat = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
            s = stats.get(name)
            if s is None:
                stats[name] = {"cmin": flat.min(0), "cmax": flat.max(0), "min": flat.min(), "max": flat.max(),
                               "dims": list(x.shape), "samples": 1}
                continue
            if s["cmin"] is not None and s["cmin"].shape == flat.shape[1:]:
                s["cmin"] = np.minimum(s["cmin"], flat.min(0))
                s["cmax"] = np.maximum(s["cmax"], flat.max(0))
            else:
                s["cmin"] = s["cmax"] = None
            s["min"] = min(s["min"], flat.min())
            s["max"] = max(s["max"], flat.max())
            s["dims"] = [d if d == e else -1 for d, e in zip(s["dims"], x.shape)] if len(s["dims"]) == x.ndim else []
            s["samples"] += 1
    return stats


def abs_max(s) -> np.float32:
    return np.float32(max(abs(float(s["min"])), abs(float(s["max"]))))


# ----------------------------------------------------------------------------- smoothing

def smooth(model: onnx.ModelProto, stats, alpha: float, scope: str,
           lm_head: bool = False) -> tuple[onnx.ModelProto, list[dict]]:
    model = copy.deepcopy(model)
    g = Graph(model)
    heads = set() if lm_head else {id(n) for n in g.output_heads()}
    groups: dict[str, list] = {}
    for n in g.linears():
        groups.setdefault(n.input[0], []).append(n)
    report = []
    new_inits = []
    for x, layers in groups.items():
        weights = [g.linear_weight(n) for n in layers]
        k = {w.shape[1] if t else w.shape[0] for w, t in weights}
        if len(k) != 1:
            continue
        channels = k.pop()
        if all(id(n) in heads for n in layers):
            continue
        if scope == "norms" and not g.is_norm_output(x, channels):
            continue
        if scope == "foldable" and not g.is_norm_output(x, channels) and g.fold_params(x, layers, channels) is None:
            continue
        s_x = stats.get(x)
        if s_x is None or s_x["cmax"] is None or s_x["cmax"].shape != (channels,):
            continue
        ax = np.maximum(np.maximum(-s_x["cmin"], s_x["cmax"]), 0).astype(np.float64)
        aw = np.max([np.abs(w.T if t else w).max(axis=1) for w, t in weights], axis=0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = np.power(ax, alpha) / np.power(np.maximum(aw, 1e-5), 1 - alpha)
            s = np.maximum(s, 1e-5)
        s = np.where((ax > 0) & np.isfinite(ax) & np.isfinite(s), s, 1.0).astype(np.float32)
        def replace(node, index, array):
            name = node.input[index] + "_ref_smoothed_" + str(len(new_inits))
            tensor = numpy_helper.from_array(array.astype(np.float32), name)
            new_inits.append(tensor)
            g.inits[name] = tensor  # later groups read the current weights
            node.input[index] = name

        for n, (w, t) in zip(layers, weights):
            replace(n, 1, (w * s[None, :]) if t else (w * s[:, None]))
        fold = g.fold_params(x, layers, channels)
        if fold is not None:
            for node, index in fold:
                if index == -1:  # a linear's output columns
                    w, t = g.linear_weight(node)
                    replace(node, 1, (w / s[:, None]) if t else (w / s[None, :]))
                    continue
                a = g.array(node.input[index])
                replace(node, index, (a.reshape(-1) / s).reshape(a.shape))
        else:
            inv = (np.float32(1) / s).astype(np.float32)
            scale_name = x + "_ref_inv_s"
            y = x + "_ref_smoothed"
            new_inits.append(numpy_helper.from_array(inv, scale_name))
            mul = helper.make_node("Mul", [x, scale_name], [y], name=x + "_ref_smooth")
            first = min(list(model.graph.node).index(n) for n in layers)
            model.graph.node.insert(first, mul)
            for n in layers:
                n.input[0] = y
        report.append({"activation": x, "layers": [n.name for n in layers], "folded": fold is not None})
    model.graph.initializer.extend(new_inits)
    return model, report


# ----------------------------------------------------------------------------- fake quantization

def quantize_weight(w: np.ndarray, transposed: bool, per_channel: bool) -> np.ndarray:
    """Dequantized int8 weight (same layout)."""
    axis = 1 if transposed else 0  # reduce over input channels -> one scale per output column
    absmax = np.abs(w).max(axis=axis, keepdims=True) if per_channel else np.abs(w).max(keepdims=True)
    d = np.where((absmax > 0) & np.isfinite(absmax),
                 np.maximum(absmax.astype(np.float32) / np.float32(127), FLT_MIN), np.float32(1)).astype(np.float32)
    q = np.clip(np.round(w / d), -127, 127).astype(np.float32)
    return (q * d).astype(np.float32)


def known_dim(model_stats, name, from_end):
    s = model_stats.get(name) if model_stats else None
    if s and len(s["dims"]) >= from_end and s["dims"][-from_end] > 0:
        return s["dims"][-from_end]
    return None


def fake_quantize(model: onnx.ModelProto, stats, policy: str, per_channel: bool, bmm: bool,
                  lm_head: bool, exclude: str | None) -> onnx.ModelProto:
    model = copy.deepcopy(model)
    g = Graph(model)
    heads = set() if lm_head else {id(n) for n in g.output_heads()}
    pattern = re.compile(exclude) if exclude else None
    targets = []  # (node, input index, mode)
    new_inits = [numpy_helper.from_array(np.array(127, np.float32), "ref_127"),
                 numpy_helper.from_array(np.array(FLT_MIN, np.float32), "ref_min_scale"),
                 numpy_helper.from_array(np.array(-128, np.float32), "ref_lo"),
                 numpy_helper.from_array(np.array(127, np.float32), "ref_hi"),
                 numpy_helper.from_array(np.array([-1], np.int64), "ref_axis_m1"),
                 numpy_helper.from_array(np.array([-2], np.int64), "ref_axis_m2")]

    def mode(name, role, contracted):
        if policy == "O3":
            d = max(abs_max(stats[name]) / np.float32(127), FLT_MIN)
            return ("static", np.float32(d))
        if policy == "O1" and contracted is not None:
            return ("rows",) if role == "rows" else ("cols",)
        return ("tensor",)

    bmms = g.bmms() if bmm else []
    for n in g.linears():
        if (pattern and pattern.search(n.name)) or id(n) in heads:
            continue
        w, t = g.linear_weight(n)
        name = n.input[1] + "_ref_fq"
        new_inits.append(numpy_helper.from_array(quantize_weight(w, t, per_channel), name))
        n.input[1] = name
        targets.append((n, 0, mode(n.input[0], "rows", w.shape[1] if t else w.shape[0])))
    if bmm:
        for n in bmms:
            if pattern and pattern.search(n.name):
                continue
            contracted = known_dim(stats, n.input[0], 1) or known_dim(stats, n.input[1], 2)
            targets.append((n, 0, mode(n.input[0], "rows", contracted)))
            targets.append((n, 1, mode(n.input[1], "cols", contracted)))

    nodes = list(model.graph.node)
    inserted: dict[tuple, str] = {}
    before: dict[int, list] = {}
    for n, k, m in targets:
        x = n.input[k]
        key = (x, m)
        if key not in inserted:
            base = f"{x}_ref_fq{len(inserted)}"
            chain = []
            if m[0] == "static":
                new_inits.append(numpy_helper.from_array(np.array(m[1], np.float32), base + "_d"))
                d = base + "_d"
            else:
                chain.append(helper.make_node("Abs", [x], [base + "_abs"]))
                if m[0] == "tensor":
                    chain.append(helper.make_node("ReduceMax", [base + "_abs"], [base + "_max"], keepdims=0))
                else:
                    axis = "ref_axis_m1" if m[0] == "rows" else "ref_axis_m2"
                    chain.append(helper.make_node("ReduceMax", [base + "_abs", axis], [base + "_max"], keepdims=1))
                chain.append(helper.make_node("Div", [base + "_max", "ref_127"], [base + "_div"]))
                chain.append(helper.make_node("Max", [base + "_div", "ref_min_scale"], [base + "_d"]))
                d = base + "_d"
            chain.append(helper.make_node("Div", [x, d], [base + "_xd"]))
            chain.append(helper.make_node("Round", [base + "_xd"], [base + "_r"]))
            chain.append(helper.make_node("Clip", [base + "_r", "ref_lo", "ref_hi"], [base + "_q"]))
            chain.append(helper.make_node("Mul", [base + "_q", d], [base + "_out"]))
            first = min(nodes.index(t[0]) for t in targets if t[0].input[t[1]] == x and t[2] == m)
            before.setdefault(first, []).extend(chain)
            inserted[key] = base + "_out"
        n.input[k] = inserted[key]
    ordered = []
    for i, n in enumerate(nodes):
        ordered += before.get(i, []) + [n]
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    model.graph.initializer.extend(new_inits)
    opset = next((o for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and opset.version < 18:
        upgrade_reduce_axes(model)
        opset.version = 18
    return model


def upgrade_reduce_axes(model: onnx.ModelProto) -> None:
    """opset 17 -> 18: Reduce* (except ReduceSum) take axes as an input."""
    reduces = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}
    for n in model.graph.node:
        if n.op_type in reduces:
            axes = [a for a in n.attribute if a.name == "axes"]
            if axes:
                name = (n.name or n.output[0]) + "_ref_axes"
                model.graph.initializer.append(numpy_helper.from_array(np.array(axes[0].ints, np.int64), name))
                n.attribute.remove(axes[0])
                n.input.append(name)


# ----------------------------------------------------------------------------- comparing

def metrics(candidate: np.ndarray, reference: np.ndarray) -> dict:
    c = candidate.astype(np.float64).ravel()
    r = reference.astype(np.float64).ravel()
    diff = c - r
    norm = np.linalg.norm(r)
    cos = float(c @ r / (np.linalg.norm(c) * norm)) if norm > 0 and np.linalg.norm(c) > 0 else 1.0
    return {"max_abs": float(np.abs(diff).max(initial=0)), "rel_l2": float(np.linalg.norm(diff) / norm) if norm > 0 else 0.0,
            "cosine": cos}


def build_reference(model, calib, args):
    report = []
    if not args.no_smooth:
        stats = calibrate(model, calib)
        model, report = smooth(model, stats, args.alpha, args.scope, args.lm_head)
    if args.policy != "fp32":
        qstats = calibrate(model, calib)
        model = fake_quantize(model, qstats, args.policy, args.weights == "per-channel", args.bmm,
                              args.lm_head, args.exclude)
    return model, report


def command_run(args) -> int:
    model = onnx.load(args.model)
    calib = load_samples(Path(args.calib), model)
    data = load_samples(Path(args.data), model)
    reference, report = build_reference(model, calib, args)
    if args.save_model:
        onnx.save(reference, args.save_model)
    ref_sess = session(reference)
    result = {"groups": len(report), "folded": sum(r["folded"] for r in report), "outputs": {}}
    cand_sess = None
    if args.compare:
        cand_sess = session(onnx.load(args.compare), optimize=args.ort_optimize)
    worst = 0.0
    for index, sample in enumerate(data):
        ref_out = dict(zip([o.name for o in ref_sess.get_outputs()], ref_sess.run(None, sample)))
        if cand_sess is None:
            continue
        cand_out = dict(zip([o.name for o in cand_sess.get_outputs()], cand_sess.run(None, sample)))
        if args.save_candidate_outputs:
            folder = Path(args.save_candidate_outputs) / str(index)
            folder.mkdir(parents=True, exist_ok=True)
            for name, value in cand_out.items():
                np.save(folder / (name.replace("/", "_") + ".npy"), value)
        for name, r in ref_out.items():
            if name not in cand_out:
                continue
            m = metrics(cand_out[name], r)
            agg = result["outputs"].setdefault(name, {"max_abs": 0.0, "rel_l2": 0.0, "cosine": 1.0})
            agg["max_abs"] = max(agg["max_abs"], m["max_abs"])
            agg["rel_l2"] = max(agg["rel_l2"], m["rel_l2"])
            agg["cosine"] = min(agg["cosine"], m["cosine"])
            worst = max(worst, m["rel_l2"])
    result["worst_rel_l2"] = worst
    result["ok"] = worst <= args.rtol
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"groups {result['groups']} (folded {result['folded']})")
        for name, m in result["outputs"].items():
            print(f"{name}: rel_l2 {m['rel_l2']:.3e}  max_abs {m['max_abs']:.3e}  cosine {m['cosine']:.8f}")
        if cand_sess is not None:
            print(("OK" if result["ok"] else "MISMATCH") + f": worst rel_l2 {worst:.3e} (rtol {args.rtol})")
    return 0 if result["ok"] else 1


def command_stats(args) -> int:
    model = onnx.load(args.model)
    stats = calibrate(model, load_samples(Path(args.calib), model))
    out = {name: {"min": float(s["min"]), "max": float(s["max"]), "absMax": float(abs_max(s)), "dims": s["dims"],
                  "samples": s["samples"],
                  "channelMin": None if s["cmin"] is None else s["cmin"].astype(float).tolist(),
                  "channelMax": None if s["cmax"] is None else s["cmax"].astype(float).tolist()}
           for name, s in stats.items()}
    Path(args.json).write_text(json.dumps(out))
    return 0


def command_ort_scales(args) -> int:
    """Activation scales from onnxruntime quantize_static (QDQ, MinMax, symmetric activations)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    model = onnx.load(args.model)
    samples = load_samples(Path(args.calib), model)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "q.onnx"
        quantize_static(args.model, str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gemm"], calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
        q = onnx.load(str(out))
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    scales = {}
    for n in q.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[1] in inits:
            scales[n.input[0]] = float(inits[n.input[1]].reshape(-1)[0])
    Path(args.json).write_text(json.dumps(scales, indent=1, sort_keys=True))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="build the reference and (optionally) compare a candidate")
    run.add_argument("model")
    run.add_argument("--calib", required=True)
    run.add_argument("--data", required=True)
    run.add_argument("--alpha", type=float, default=0.5)
    run.add_argument("--scope", choices=["norms", "foldable", "all"], default="foldable")
    run.add_argument("--no-smooth", action="store_true")
    run.add_argument("--policy", choices=["fp32", "O1", "O2", "O3"], default="O3")
    run.add_argument("--weights", choices=["per-tensor", "per-channel"], default="per-tensor")
    run.add_argument("--bmm", action="store_true")
    run.add_argument("--lm-head", action=argparse.BooleanOptionalAction, default=True,
                     help="smooth and quantize the LM head too (sqopt's default; --no-lm-head keeps it float)")
    run.add_argument("--exclude")
    run.add_argument("--compare")
    run.add_argument("--ort-optimize", action="store_true", help="let onnxruntime optimize the candidate")
    run.add_argument("--rtol", type=float, default=1e-3, help="largest relative L2 error per output")
    run.add_argument("--save-model")
    run.add_argument("--save-candidate-outputs", metavar="DIR",
                     help="write the candidate's onnxruntime outputs as DIR/<sample>/<output>.npy")
    run.add_argument("--json", action="store_true")
    for name in ("stats", "ort-scales"):
        p = sub.add_parser(name)
        p.add_argument("model")
        p.add_argument("--calib", required=True)
        p.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    return {"run": command_run, "stats": command_stats, "ort-scales": command_ort_scales}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
