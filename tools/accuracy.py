#!/usr/bin/env python3
"""Regenerate docs/accuracy.md: how much accuracy sqopt's W8A8 models lose, on held-out text.

For each real model in build/real (tools/build_smollm2.py, tools/build_minilm.py, then
tools/make_eval_data.py), every configuration below is produced with the sqopt CLI from the
same 16 calibration samples (build/real/MODEL/calib) and evaluated with onnxruntime on the 25
held-out samples calibration never saw (build/real/MODEL/eval):

  fp32                      the model itself
  naive W8A8                sqopt --passes calibrate,quantize{policy=P,weights=W}
  SmoothQuant               sqopt --passes calibrate,smooth{alpha=A},quantize{policy=P,weights=W}
  onnxruntime quantize_static
                            QDQ, int8 symmetric activations and weights, MinMax calibration on the
                            same samples, the same MatMuls as sqopt (every linear except the LM
                            head; attention MatMuls stay float)

for P in O1 (per-token dynamic), O2 (per-tensor dynamic), O3 (per-tensor static) and W in
per-tensor / per-channel weights. Every linear layer is quantized (o_proj / down_proj / fc2 too).

Metrics
  SmolLM2 (causal LM)  perplexity (token-weighted), mean KL(fp32 || candidate) of the next-token
                       distributions, top-1 agreement with fp32
  MiniLM (embeddings)  cosine of sentence_embedding with fp32 (mean and worst over samples)

  python tools/accuracy.py                   # all models; writes docs/accuracy.md
  python tools/accuracy.py --models minilm --sqopt .build/release/sqopt --keep
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import realmodels  # noqa: E402

POLICIES = ["O1", "O2", "O3"]
WEIGHTS = ["per-tensor", "per-channel"]


# The linears whose input has no norm in front (o_proj / down_proj, BERT's attention output and
# FFN output dense layers): excluded in the "norm→linear only" rows, the paper's setting.
NO_NORM_LINEARS = {"causal": "o_proj|down_proj", "encoder": "output/dense"}


def explicit(pipeline):
    """The rows are labelled in the terms of the defaults before 2026-12-03 (norm groups only,
    LM head float): spell those out unless the row sets them, so a row keeps its meaning."""
    if pipeline is None or pipeline.startswith("ort"):
        return pipeline
    steps = []
    for step in re.split(r",(?![^{]*})", pipeline):
        name, _, options = step.partition("{")
        options = options.rstrip("}")
        given = {o.split("=")[0] for o in options.split(",") if o}
        extra = []
        if name == "smooth" and "scope" not in given:
            extra.append("scope=norms")
        if name in ("smooth", "quantize") and "lm-head" not in given:
            extra.append("lm-head=false")
        options = ",".join([o for o in options.split(",") if o] + extra)
        steps.append(f"{name}{{{options}}}" if options else name)
    return ",".join(steps)


def configurations(alpha: float, extra: bool, family: str, static: bool = False):
    for label, pipeline in labelled_configurations(alpha, extra, family, static):
        yield label, explicit(pipeline)


def labelled_configurations(alpha: float, extra: bool, family: str, static: bool = False):
    yield "fp32", None
    only = NO_NORM_LINEARS[family]
    yield ("naive W8A8 O3 per-tensor, norm→linear layers only",
           f"calibrate,quantize{{policy=O3,weights=per-tensor,target=qdq,exclude={only}}}")
    yield (f"SmoothQuant α{alpha} O3 per-tensor, norm→linear layers only",
           f"calibrate,smooth{{alpha={alpha}}},quantize{{policy=O3,weights=per-tensor,target=qdq,exclude={only}}}")
    for p in POLICIES:
        for w in WEIGHTS:
            yield f"naive W8A8 {p} {w}", f"calibrate,quantize{{policy={p},weights={w},target=qdq}}"
    for p in POLICIES:
        for w in WEIGHTS:
            yield (f"SmoothQuant α{alpha} {p} {w}",
                   f"calibrate,smooth{{alpha={alpha}}},quantize{{policy={p},weights={w},target=qdq}}")
    # The onnxruntime target (uint8 activations, zero point 128): the same codes as the rows
    # above, written for onnxruntime's u8×s8 kernels; and the LM head quantized too.
    for p, w in (("O1", "per-channel"), ("O3", "per-tensor"), ("O3", "per-channel")):
        yield (f"SmoothQuant α{alpha} {p} {w} target=onnxruntime",
               f"calibrate,smooth{{alpha={alpha}}},quantize{{policy={p},weights={w},target=onnxruntime}}")
    if family == "causal":
        for p, w in (("O1", "per-channel"), ("O3", "per-channel")):
            yield (f"SmoothQuant α{alpha} {p} {w} target=onnxruntime lm-head=true",
                   f"calibrate,smooth{{alpha={alpha}}},quantize{{policy={p},weights={w},target=onnxruntime,lm-head=true}}")
    if family == "causal":
        # The LM head with its input smoothed too (smooth{lm-head=true}), and the wider smoothing
        # scopes: what an int8 LM head costs when SmoothQuant covers it.
        for scope, head in (("", True), ("foldable", False), ("foldable", True), ("all", False), ("all", True)):
            label = f"SmoothQuant α{alpha}{f' scope={scope}' if scope else ''} O1 per-channel target=onnxruntime"
            if head:
                label += " lm-head=true, LM head smoothed" + (" (the default since 2026-12-03)" if scope == "foldable" else "")
            smooth = f"alpha={alpha}" + (f",scope={scope}" if scope else "") + (",lm-head=true" if head else "")
            yield (label, f"calibrate,smooth{{{smooth}}},quantize{{policy=O1,weights=per-channel,target=onnxruntime"
                          + (",lm-head=true}" if head else "}"))
    if extra:
        for p, w in (("O1", "per-channel"), ("O3", "per-tensor"), ("O3", "per-channel")):
            yield (f"SmoothQuant α{alpha} scope=all {p} {w}",
                   f"calibrate,smooth{{alpha={alpha},scope=all}},quantize{{policy={p},weights={w},target=qdq}}")
        yield ("SmoothQuant α=auto O1 per-channel",
               "calibrate,smooth{alpha=auto,policy=O1,weights=per-channel},quantize{policy=O1,weights=per-channel,target=qdq}")
        yield ("SmoothQuant α=auto O3 per-tensor",
               "calibrate,smooth{alpha=auto,policy=O3},quantize{policy=O3,target=qdq}")
        # Ablations for "what limits O1": leave one family of linears in float.
        for layers in only.split("|"):
            yield (f"SmoothQuant α{alpha} O1 per-channel, {layers} float",
                   f"calibrate,smooth{{alpha={alpha}}},quantize{{policy=O1,weights=per-channel,target=qdq,exclude={layers}}}")
    if static:
        # Static calibration beyond MinMax and the per-layer policy (issue #14).
        for method in ("percentile", "mse"):
            yield (f"SmoothQuant α{alpha} O3 per-tensor calibration={method}",
                   f"calibrate,smooth{{alpha={alpha}}},quantize{{policy=O3,weights=per-tensor,target=qdq,calibration={method}}}")
        yield (f"SmoothQuant α{alpha} O3 per-tensor calibration=mse weight-calibration=mse",
               f"calibrate,smooth{{alpha={alpha}}},quantize{{policy=O3,weights=per-tensor,target=qdq,calibration=mse,weight-calibration=mse}}")
        yield (f"SmoothQuant α{alpha} scope=all O3 per-tensor calibration=mse",
               f"calibrate,smooth{{alpha={alpha},scope=all}},quantize{{policy=O3,weights=per-tensor,target=qdq,calibration=mse}}")
        yield (f"SmoothQuant α{alpha} scope=all O3 per-tensor calibration=mse weight-calibration=mse",
               f"calibrate,smooth{{alpha={alpha},scope=all}},quantize{{policy=O3,weights=per-tensor,target=qdq,calibration=mse,weight-calibration=mse}}")
        yield (f"SmoothQuant α{alpha} O1 per-tensor weight-calibration=mse",
               f"calibrate,smooth{{alpha={alpha}}},quantize{{policy=O1,weights=per-tensor,target=qdq,weight-calibration=mse}}")
        yield (f"SmoothQuant α{alpha} scope=all O1 per-tensor weight-calibration=mse",
               f"calibrate,smooth{{alpha={alpha},scope=all}},quantize{{policy=O1,weights=per-tensor,target=qdq,weight-calibration=mse}}")
        if family == "causal":
            # Issue #14's bars with the wider smoothing scopes (every linear but the LM head):
            # O1 per-tensor weights, and O3 with per-channel / per-tensor weights. The best
            # rows and the informative failures of the sweep in docs/accuracy.md.
            qa = "quantize{policy=O1,weights=per-tensor,target=qdq}"
            for label, smooth in (("α=auto scope=foldable", "alpha=auto,scope=foldable,policy=O1,weights=per-tensor"),
                                  ("α=auto scope=all", "alpha=auto,scope=all,policy=O1,weights=per-tensor"),
                                  ("α=auto alpha-min=0 scope=foldable", "alpha=auto,alpha-min=0,scope=foldable,policy=O1,weights=per-tensor"),
                                  ("α=auto peak-rows=16 alpha-error=relative scope=foldable",
                                   "alpha=auto,alpha-error=relative,scope=foldable,policy=O1,weights=per-tensor"),
                                  ("α0.3 scope=foldable", "alpha=0.3,scope=foldable"),
                                  ("α0.5 scope=foldable", "alpha=0.5,scope=foldable"),
                                  ("α0.75 scope=foldable", "alpha=0.75,scope=foldable")):
                calibrate = "calibrate{peak-rows=16}" if "peak-rows" in label else "calibrate"
                yield f"SmoothQuant {label} O1 per-tensor", f"{calibrate},smooth{{{smooth}}},{qa}"
            yield ("SmoothQuant α0.5 scope=foldable O1 per-tensor, down_proj float",
                   "calibrate,smooth{alpha=0.5,scope=foldable},quantize{policy=O1,weights=per-tensor,target=qdq,exclude=down_proj}")
            for a, scope, w, cal in ((0.8, "foldable", "per-channel", "minmax"), (0.8, "all", "per-channel", "minmax"),
                                     (0.75, "foldable", "per-channel", "minmax"), (0.75, "all", "per-channel", "minmax"),
                                     (0.7, "foldable", "per-channel", "minmax"), (0.85, "foldable", "per-channel", "minmax"),
                                     (0.9, "foldable", "per-channel", "minmax"), ("auto", "foldable", "per-channel", "minmax"),
                                     (0.75, "foldable", "per-channel", "mse"), (0.75, "all", "per-channel", "mse"),
                                     (0.5, "all", "per-channel", "mse"), ("auto", "foldable", "per-channel", "mse"),
                                     ("auto", "all", "per-channel", "mse"),
                                     (0.8, "foldable", "per-tensor", "minmax"), (0.75, "all", "per-tensor", "mse"),
                                     (0.5, "foldable", "per-tensor", "mse"), (0.6, "foldable", "per-tensor", "mse"),
                                     (0.4, "foldable", "per-tensor", "mse"),
                                     (0.5, "foldable", "per-tensor", "minmax"),
                                     ("auto", "foldable", "per-tensor", "mse")):
                smooth = f"alpha={a},scope={scope}" + (f",policy=O3,weights={w}" if a == "auto" else "")
                calibration = "" if cal == "minmax" else f",calibration={cal}"
                yield (f"SmoothQuant α{'=' if a == 'auto' else ''}{a} scope={scope} O3 {w} calibration={cal}",
                       f"calibrate,smooth{{{smooth}}},quantize{{policy=O3,weights={w},target=qdq{calibration}}}")
            yield ("SmoothQuant α0.8 scope=foldable O3 per-channel calibration=minmax target=onnxruntime",
                   "calibrate,smooth{alpha=0.8,scope=foldable},quantize{policy=O3,weights=per-channel,target=onnxruntime}")
            yield ("SmoothQuant α=auto alpha-max=1 scope=foldable O3 per-channel calibration=minmax",
                   "calibrate,smooth{alpha=auto,alpha-max=1,scope=foldable,policy=O3,weights=per-channel},"
                   "quantize{policy=O3,weights=per-channel,target=qdq}")
        output = "" if family == "causal" else ",output=sentence_embedding"
        for scope in ("", ",scope=all"):
            yield (f"SmoothQuant α{alpha}{scope.replace(',', ' ')} policy=auto calibration=mse target=onnxruntime",
                   f"calibrate,smooth{{alpha={alpha}{scope}}},quantize{{policy=auto,calibration=mse{output}}}")
        if family == "causal":
            # α 0.8 (the best static O3 row above) under the auto policy.
            for calibration in ("mse", "minmax"):
                yield (f"SmoothQuant α0.8 scope=foldable policy=auto calibration={calibration} target=onnxruntime",
                       f"calibrate,smooth{{alpha=0.8,scope=foldable}},quantize{{policy=auto,calibration={calibration}}}")
        # Looser budgets: how the static share trades against accuracy.
        for budget in ((0.02, 0.05) if family == "causal" else (0.998, 0.995)):
            yield (f"SmoothQuant α{alpha} policy=auto calibration=mse budget={budget} target=onnxruntime",
                   f"calibrate,smooth{{alpha={alpha}}},quantize{{policy=auto,calibration=mse,budget={budget}{output}}}")
    yield "onnxruntime quantize_static (QDQ, symmetric, MinMax)", "ort"
    yield "onnxruntime quantize_dynamic (u8 per-tensor dynamic activations)", "ort-dynamic"
    if family == "causal":
        yield "onnxruntime quantize_dynamic, LM head included (tools/bench_e2e.py's contender)", "ort-dynamic-all"


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    model = onnx.load(str(path))
    if any(t.data_type == onnx.TensorProto.BFLOAT16 for t in model.graph.initializer):
        # onnxruntime's CPU provider has no bfloat16 kernels: run the float32 form that
        # rounds every bfloat16 result (tools/convert_float16.py widen_bfloat16_for_ort).
        import convert_float16
        model = convert_float16.widen_bfloat16_for_ort(model)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_sqopt(sqopt: Path, pipeline: str, model: Path, calib: Path, out: Path) -> tuple[float, dict | None]:
    """Seconds taken, and for quantize{policy=auto} a summary of the plan it chose."""
    start = time.perf_counter()
    cmd = [str(sqopt), "--passes", pipeline, "--calib", str(calib), str(model), "-o", str(out), "--force", "--json"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    seconds = time.perf_counter() - start
    auto = json.loads(result.stdout).get("autoPolicy")
    if not auto:
        return seconds, None
    forms = [layer["form"] for layer in auto["layers"]]
    return seconds, {"O3": forms.count("O3"), "O1": forms.count("O1"), "float": forms.count("float"),
                     "static_macs": auto["staticMACFraction"], "metric": auto["metric"], "budget": auto["budget"],
                     "measured": auto["measured"], "plans": len(auto["candidates"]), "seconds": seconds}


def linear_nodes(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """(MatMul/Gemm nodes with an initializer weight, all other MatMuls) by name; the LM head
    (the linear producing a graph output) is reported among the others."""
    inits = {i.name for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    linears, others = [], []
    for n in model.graph.node:
        if n.op_type not in ("MatMul", "Gemm"):
            continue
        if n.input[1] in inits and n.input[0] not in inits and n.output[0] not in outputs:
            linears.append(n.name)
        else:
            others.append(n.name)
    return linears, others


def run_ort_quantize_static(model: Path, calib: Path, out: Path) -> float:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    proto = onnx.load(str(model), load_external_data=False)
    _, others = linear_nodes(proto)
    sets = realmodels.list_test_data_sets(calib)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(sets)

        def get_next(self):
            folder = next(self.it, None)
            return None if folder is None else realmodels.read_test_data_set(folder)[0]

    start = time.perf_counter()
    quantize_static(str(model), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Gemm"], nodes_to_exclude=others,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return time.perf_counter() - start


def run_ort_quantize_dynamic(model: Path, out: Path, lm_head: bool) -> float:
    """onnxruntime's own dynamic quantization (s8 weights, u8 asymmetric per-tensor activations
    computed at run time, MatMulInteger/DynamicQuantizeMatMul): the same MatMuls as sqopt, or
    with `lm_head` every MatMul with a constant weight (its default)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    proto = onnx.load(str(model), load_external_data=False)
    _, others = linear_nodes(proto)
    start = time.perf_counter()
    quantize_dynamic(str(model), str(out), op_types_to_quantize=["MatMul"], per_channel=False,
                     weight_type=QuantType.QInt8, nodes_to_exclude=[] if lm_head else others)
    return time.perf_counter() - start


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def evaluate_lm(candidate: Path, reference_logits: list[np.ndarray], eval_sets, threads: int) -> dict:
    sess = session(candidate, threads)
    nll, count, kl_sum, agree, positions = 0.0, 0, 0.0, 0, 0
    for folder, ref in zip(eval_sets, reference_logits):
        ids = realmodels.read_test_data_set(folder)[0]["input_ids"]
        logits = sess.run(["logits"], {"input_ids": ids})[0].astype(np.float32)
        n, c = realmodels.next_token_nll(logits, ids)
        nll, count = nll + n, count + c
        lp, lq = log_softmax(ref), log_softmax(logits)
        kl_sum += float((np.exp(lp) * (lp - lq)).sum())
        agree += int((ref.argmax(-1) == logits.argmax(-1)).sum())
        positions += ref.shape[0] * ref.shape[1]
    return {"perplexity": math.exp(nll / count), "kl": kl_sum / positions, "top1": agree / positions}


def evaluate_embedding(candidate: Path, reference: list[np.ndarray], eval_sets, threads: int) -> dict:
    sess = session(candidate, threads)
    cosines = []
    for folder, ref in zip(eval_sets, reference):
        inputs = realmodels.read_test_data_set(folder)[0]
        emb = sess.run(["sentence_embedding"], inputs)[0].astype(np.float64)
        for a, b in zip(emb.reshape(len(emb), -1), ref.reshape(len(ref), -1)):
            cosines.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
    return {"cosine_mean": float(np.mean(cosines)), "cosine_min": float(np.min(cosines))}


def evaluate_model(name: str, args, sqopt: Path, work: Path, previous: dict) -> list[dict]:
    folder = Path(args.root) / name
    model, calib = folder / "model.onnx", folder / "calib"
    eval_sets = realmodels.list_test_data_sets(folder / "eval")
    causal = name.startswith("smollm2")
    # The metrics compare with the float32 model of the same name (--reference-root), so the
    # rows of a float16 model include what float16 itself costs.
    reference_model = Path(args.reference_root or args.root) / name.split("-")[0] / "model.onnx"
    ref_sess = session(reference_model, args.threads)
    if causal:
        reference = [ref_sess.run(["logits"], realmodels.read_test_data_set(f)[0])[0] for f in eval_sets]
    else:
        reference = [ref_sess.run(["sentence_embedding"], realmodels.read_test_data_set(f)[0])[0] for f in eval_sets]
    del ref_sess
    rows = []
    done = {r["config"]: r for r in previous.get(name, [])}
    if args.merge_doc:
        # Rows already in docs/accuracy.md are kept as they are (their cells verbatim).
        for (model_name, label), cells in fp32_rows(Path(args.out).read_text().split(HALF_BEGIN)[0]).items():
            # The model itself is measured again: the other rows' Δ compares with its exact value.
            if model_name == name and label not in done and label not in ("fp32", "model itself"):
                if label.startswith("plan: "):  # a row of the policy=auto plans table
                    continue
                done[label] = {"config": label, "cells": cells, "pipeline": "doc"}
        for (model_name, label), cells in fp32_rows(Path(args.out).read_text().split(HALF_BEGIN)[0]).items():
            if model_name == name and label.startswith("plan: ") and label[6:] in done:
                done[label[6:]]["plan_cells"] = cells
    for label, pipeline in configurations(args.alpha, args.extra, "causal" if causal else "encoder", args.static):
        wanted = pipeline is None and args.merge_doc  # merged rows' Δ needs the model itself
        if args.only and not wanted and label not in done and not any(label == o or (o == "fp32" and pipeline is None) for o in args.only):
            continue
        if pipeline is None:
            label = "model itself" if args.reference_root else label
        if label in done:
            rows.append(done[label])
            continue
        out = work / name / (label.replace(" ", "_").replace("/", "_").replace("α", "a").replace("(", "").replace(")", "").replace(",", "") + ".onnx")
        out.parent.mkdir(parents=True, exist_ok=True)
        seconds, plan = 0.0, None
        if pipeline is None:
            out = model
        elif pipeline == "ort":
            seconds = run_ort_quantize_static(model, calib, out)
        elif pipeline.startswith("ort-dynamic"):
            seconds = run_ort_quantize_dynamic(model, out, lm_head=pipeline == "ort-dynamic-all")
        else:
            seconds, plan = run_sqopt(sqopt, pipeline, model, calib, out)
        metrics = (evaluate_lm if causal else evaluate_embedding)(out, reference, eval_sets, args.threads)
        row = {"config": label, "pipeline": pipeline, "seconds": seconds, **metrics, **({"plan": plan} if plan else {})}
        print(json.dumps({"model": name, **row}), flush=True)
        rows.append(row)
        if args.json:
            Path(args.json).write_text(json.dumps({**previous, name: rows}, indent=1))
        if out != model and not args.keep:
            out.unlink(missing_ok=True)
    return rows


def render(results: dict, args) -> str:
    lines = ["# Accuracy of sqopt's W8A8 models", "",
             "Generated by `python tools/accuracy.py` (do not edit by hand) on "
             f"{datetime.date.today().isoformat()}, onnxruntime {ort.__version__}, {platform.machine()}.", "",
             "Every model is calibrated on the 16 samples in `build/real/MODEL/calib` and evaluated with "
             "onnxruntime on the 25 held-out samples in `build/real/MODEL/eval` (texts calibration never "
             "saw; at most 128 tokens each). Every linear layer is quantized — including o_proj/down_proj "
             "and fc2, whose inputs SmoothQuant does not smooth — except the LM head unless a row says "
             "*lm-head=true*; attention MatMuls stay float (`bmm=false`). Every row spells out the "
             "defaults of before 2026-12-03 it relies on (`smooth{scope=norms,lm-head=false}`, "
             "`quantize{lm-head=false}`), so its label keeps its meaning; the default since then is the "
             "row marked so. Symmetric int8, zero point 0, scale = absmax/127. O1 = per-token "
             "dynamic activations, O2 = per-tensor dynamic, O3 = per-tensor static (paper Table 2); "
             "weights per-tensor (the paper's levels) or per output channel.", "",
             "Rows and their sqopt pipelines (all with `--calib build/real/MODEL/calib`):", "",
             "- *naive W8A8 P W*: `calibrate,quantize{policy=P,weights=W,target=qdq}`",
             "- *SmoothQuant αA P W*: `calibrate,smooth{alpha=A},quantize{policy=P,weights=W,target=qdq}` "
             "(norm→linear groups smoothed: q/k/v, gate/up, fc1)",
             "- *target=onnxruntime*: the same with `quantize{…,target=onnxruntime}` (the default): uint8 "
             "activations with zero point 128, the codes of the QDQ rows, in the form onnxruntime's u8×s8 "
             "kernels run (docs/deployment.md); *lm-head=true* also quantizes the LM head; *LM head smoothed*: "
             "`smooth{lm-head=true}` smooths its input too (folded into the final norm)",
             "- *scope=foldable*: `smooth{scope=foldable}` also smooths the inputs whose producer absorbs 1/s "
             "with no inserted op (down_proj, into up_proj's output channels)",
             "- *scope=all*: `smooth{scope=all}` also smooths o_proj / down_proj / fc2 inputs (down_proj "
             "folds into up_proj, the others get a `Mul(1/s)`)",
             "- *α=auto*: `smooth{alpha=auto,policy=P,weights=W}` picks α per group on 0.30…0.90; *alpha-min=0*: on "
             "0…0.90; *peak-rows=16 alpha-error=relative*: with `calibrate{peak-rows=16}` and `smooth{alpha-error=relative}` "
             "(docs/smoothquant.md, \"`alpha=auto`\")",
             "- *norm→linear layers only*: `quantize{exclude=o_proj|down_proj}` (MiniLM: "
             "`exclude=output/dense`), the layers the paper quantizes with SmoothQuant",
             "- *X float*: the same exclusion for one family, to see which layers limit O1",
             "- *calibration=percentile|mse*: `quantize{…,calibration=M}` (*calibration=minmax*: the default, named in the sweep rows): each static (O3) activation range is the "
             "99.99th percentile of |x|, or the range with the smallest Q/DQ error, from histograms of the smoothed "
             "activations over the calibration samples (docs/smoothquant.md, \"Static ranges\"); "
             "*weight-calibration=mse*: per-tensor weight ranges chosen the same way",
             "- *policy=auto*: `quantize{policy=auto,calibration=mse}` (default budget: KL 0.01 on the calibration "
             "samples for SmolLM2; MiniLM: cosine 0.999 of `output=sentence_embedding`), target=onnxruntime: per layer O3, "
             "O1 or float (docs/smoothquant.md, \"policy=auto\"); the plan's share of static MACs is in the "
             "section below the tables",
             "- *onnxruntime quantize_static*: `quantize_static(QDQ, QInt8/QInt8, MinMax, "
             "ActivationSymmetric, WeightSymmetric)` on the same samples and the same MatMuls",
             "- *onnxruntime quantize_dynamic*: `quantize_dynamic(QInt8 weights, per-tensor)` (u8 asymmetric "
             "activations quantized at run time) on the same MatMuls; *LM head included*: its default, every "
             "MatMul with a constant weight, the model `tools/bench_e2e.py` times", ""]
    for name, rows in results.items():
        causal = name.startswith("smollm2")
        lines += [f"## {name}", ""]
        if causal:
            lines += ["| configuration | perplexity | Δ vs fp32 | KL(fp32‖q) | top-1 agreement |",
                      "|---|---:|---:|---:|---:|"]
            base = rows[0]["perplexity"] if "cells" not in rows[0] else float(rows[0]["cells"][0])  # the model itself
            for r in rows:
                if "cells" in r:
                    lines.append("| " + " | ".join([r["config"]] + r["cells"]) + " |")
                    continue
                delta = "" if r["pipeline"] is None else f"{100 * (r['perplexity'] / base - 1):+.1f}%"
                lines.append(f"| {r['config']} | {r['perplexity']:.2f} | {delta} | {r['kl']:.4f} | {100 * r['top1']:.1f}% |")
        else:
            lines += ["| configuration | embedding cosine (mean) | worst sample |", "|---|---:|---:|"]
            for r in rows:
                if "cells" in r:
                    lines.append("| " + " | ".join([r["config"]] + r["cells"]) + " |")
                    continue
                lines.append(f"| {r['config']} | {r['cosine_mean']:.5f} | {r['cosine_min']:.5f} |")
        lines += [""]
        if causal:
            lines += bars(rows)
        plans = [r for r in rows if r.get("plan") or r.get("plan_cells")]
        if plans:
            lines += [f"policy=auto plans ({name}): the layers of each form, the share of linear-layer MACs with static "
                      "per-tensor activations (the LM head excluded), and the budget as sqopt measured it on the "
                      "calibration samples:", "",
                      "| configuration | O3 | O1 | float | static MACs | measured on calib | plans measured | sqopt seconds |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in plans:
                if "plan_cells" in r:
                    lines.append("| " + " | ".join(["plan: " + r["config"]] + r["plan_cells"]) + " |")
                    continue
                p = r["plan"]
                lines.append(f"| plan: {r['config']} | {p['O3']} | {p['O1']} | {p['float']} | {100 * p['static_macs']:.1f}% | "
                             f"{p['metric']} {p['measured']:.5f} (budget {p['budget']:g}) | {p['plans']} | {p['seconds']:.0f} |")
            lines += [""]
    lines += ["The figures come from onnxruntime on sqopt's QDQ files; sqopt's own interpreter agrees with "
              "onnxruntime layer by layer to 3e-7, and end to end its figures agree with onnxruntime's (KL "
              "within 7.2%, 1 − cosine within 6.4% on five eval samples): docs/crosscheck.md.", "",
              "Regenerate: `swift build -c release --product sqopt && .venv/bin/python tools/accuracy.py --extra --static` "
              "(`--extra`: the scope=all, α=auto and ablation rows; `--static`: the calibration=…, weight-calibration=… and "
              "policy=auto rows; `--merge-doc --only LABEL…` computes only the given rows and keeps the others as they are).", ""]
    return "\n".join(lines)


def bars(rows: list[dict]) -> list[str]:
    """Issue #14's SmolLM2 bars, from the rows above: the best row of each kind (every linear but
    the LM head, no layer left float) against its bar."""
    def perplexity(r):
        return float(r["cells"][0]) if "cells" in r else r["perplexity"]
    model = [r for r in rows if r["pipeline"] is None]
    if not model:  # --only without the model itself: no Δ to judge by
        return []
    base = perplexity(model[0])
    kinds = (("O1, per-tensor weights", 3, lambda c: " O1 per-tensor" in c),
             ("O3 (per-tensor static activations), any weights", 15, lambda c: " O3 per-" in c),
             ("O3, per-tensor weights too", 15, lambda c: " O3 per-tensor" in c))
    lines = ["Issue #14's bars (every linear but the LM head; the best row above of each kind):", "",
             "| bar | best row | perplexity | Δ vs fp32 | |", "|---|---|---:|---:|---|"]
    for kind, limit, match in kinds:
        found = [r for r in rows if r["pipeline"] is not None and match(r["config"]) and "float" not in r["config"]
                 and "norm→linear" not in r["config"] and "lm-head=true" not in r["config"]]
        if not found:
            continue
        best = min(found, key=perplexity)
        delta = 100 * (perplexity(best) / base - 1)
        lines.append(f"| {kind}: within {limit}% | {best['config']} | {perplexity(best):.2f} | {delta:+.1f}% | "
                     f"{'met' if delta <= limit else '**not met**'} |")
    return lines + [""]


HALF_BEGIN, HALF_END = "<!-- half-precision rows: tools/accuracy.py --root build/fp16 -->", "<!-- end half-precision rows -->"


def fp32_rows(doc: str) -> dict:
    """{(model, configuration): [cells]} from the float32 tables already in docs/accuracy.md."""
    rows, model = {}, None
    for line in doc.splitlines():
        if line.startswith("## "):
            model = line[3:].strip()
        elif line.startswith("| ") and model and not line.startswith("| configuration"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[(model, cells[0])] = cells[1:]
    return rows


def render_half(results: dict, doc: str) -> str:
    """The float16/bfloat16 section: each row next to the same configuration's row of the
    float32 model (metrics always against the float32 model's outputs)."""
    base = fp32_rows(doc.split(HALF_BEGIN)[0])
    lines = [HALF_BEGIN, "## float16 and bfloat16 models", "",
             f"Generated by `python tools/accuracy.py --root build/fp16 --reference-root build/real` on "
             f"{datetime.date.today().isoformat()}, onnxruntime {ort.__version__}: the real models converted by "
             "`tools/convert_float16.py` (build/fp16/MODEL-fp16, MODEL-bf16; docs/real-models.md), calibrated and "
             "evaluated on the same samples, every metric against the **float32** model's outputs (so the rows include "
             "what float16/bfloat16 itself costs: the *model itself* row). bfloat16 files run in onnxruntime through "
             "`widen_bfloat16_for_ort` (float32 arithmetic, every bfloat16 result rounded), as its CPU provider has "
             "no bfloat16 kernels. *ratio* compares with the float32 model's row above: KL / KL (SmolLM2), "
             "(1 − cosine) / (1 − cosine) (MiniLM).", ""]
    for name, rows in results.items():
        family = name.split("-")[0]
        if family.startswith("smollm2"):
            lines += [f"### {name}", "", "| configuration | perplexity | KL(fp32‖q) | top-1 agreement | float32 model's KL | ratio |",
                      "|---|---:|---:|---:|---:|---:|"]
            for r in rows:
                ref = base.get((family, r["config"]))
                ref_kl = float(ref[2]) if ref else None
                ratio = f"{r['kl'] / ref_kl:.2f}" if ref_kl else ""
                lines.append(f"| {r['config']} | {r['perplexity']:.2f} | {r['kl']:.4f} | {100 * r['top1']:.1f}% | "
                             f"{ref[2] if ref else ''} | {ratio} |")
        else:
            lines += [f"### {name}", "", "| configuration | embedding cosine (mean) | worst sample | float32 model's cosine | ratio of 1 − cosine |",
                      "|---|---:|---:|---:|---:|"]
            for r in rows:
                ref = base.get((family, r["config"]))
                ref_cos = float(ref[0]) if ref else None
                ratio = f"{(1 - r['cosine_mean']) / (1 - ref_cos):.2f}" if ref_cos is not None and ref_cos < 1 else ""
                lines.append(f"| {r['config']} | {r['cosine_mean']:.5f} | {r['cosine_min']:.5f} | {ref[0] if ref else ''} | {ratio} |")
        lines += [""]
    return "\n".join(lines + [HALF_END])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["smollm2", "minilm"])
    parser.add_argument("--sqopt", default=str(REPO / ".build" / "release" / "sqopt"))
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--extra", action="store_true", help="also scope=all and alpha=auto rows")
    parser.add_argument("--static", action="store_true", help="also the static-calibration and policy=auto rows")
    parser.add_argument("--merge-doc", action="store_true",
                        help="keep the rows already in --out (cells verbatim) and compute only the missing ones")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the quantized models in --work")
    parser.add_argument("--work", default=str(REPO / "build" / "accuracy"))
    parser.add_argument("--out", default=str(REPO / "docs" / "accuracy.md"))
    parser.add_argument("--json", help="also write the raw results here (updated after every row)")
    parser.add_argument("--resume", help="reuse the rows of an earlier --json file (same labels)")
    parser.add_argument("--root", default=str(REPO / "build" / "real"), help="folder of the MODEL folders")
    parser.add_argument("--reference-root", help="folder of the float32 models the metrics compare with "
                        "(MODEL's name up to the first '-', e.g. smollm2 for smollm2-fp16); default --root")
    parser.add_argument("--only", nargs="*", help="only these configuration labels ('fp32' = the model itself)")
    args = parser.parse_args()
    sqopt = Path(args.sqopt)
    if not sqopt.exists():
        print("building sqopt (release) ...", file=sys.stderr)
        subprocess.run(["swift", "build", "-c", "release", "--product", "sqopt"], cwd=REPO, check=True)
    previous = json.loads(Path(args.resume).read_text()) if args.resume else {}
    results = {}
    for name in args.models:
        if not (Path(args.root) / name / "model.onnx").exists():
            print(f"skipping {name}: {args.root}/{name}/model.onnx is missing", file=sys.stderr)
            continue
        results[name] = evaluate_model(name, args, sqopt, Path(args.work), {**previous, **results})
    out = Path(args.out)
    old = out.read_text() if out.exists() else ""
    if args.reference_root:
        # The half-precision section replaces its previous version; the float32 tables stay.
        head = old.split(HALF_BEGIN)[0].rstrip("\n")
        tail = old.split(HALF_END, 1)[1] if HALF_END in old else ""
        out.write_text(head + "\n\n" + render_half(results, old) + tail.rstrip("\n") + "\n")
    else:
        section = old[old.index(HALF_BEGIN):old.index(HALF_END) + len(HALF_END)] if HALF_END in old else ""
        out.write_text(render(results, args) + ("\n" + section + "\n" if section else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
