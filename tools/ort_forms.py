#!/usr/bin/env python3
"""The experiment behind quantize{target=onnxruntime} (docs/deployment.md, "What onnxruntime
makes of each form"): rewrite one of sqopt's portable QDQ files (quantize{target=qdq}) by hand
into candidate onnxruntime forms, then time onnxruntime on each and list what its optimizer
fused them into; `profile` breaks one file's onnxruntime time down by op type.

Forms (`rewrite QDQ.onnx FORM OUT.onnx`):
  u8     static activations: Q/DQ zero point int8 0 -> uint8 128 (the target's static form);
         dynamic ones: Q(Div(x, Δ), 1, 128) -> DQ(·, 1, 128) and Mul(product, Δ) after the
         MatMul (the target's dynamic form)
  u8mi   u8, then every DQ -> MatMul <- DQ(W) written as MatMulInteger -> Cast -> Mul(scales)

Forms of the O1 (per-token) onnxruntime-target file (`rewrite ORT-TARGET.onnx FORM[+FORM…] OUT`,
issue 13; the file sqopt writes is `Δ = Max(Div(ReduceMax(Abs(x), -1), 127), tiny)`,
`Q(Div(x, Δ), 1, 128) → DQ(·, 1, 128) → MatMul(·, DQ(W)) → Mul(Δ)`):
  minmax   ReduceMax(Abs(x)) -> Max(ReduceMax(x), Neg(ReduceMin(x))) (the same max |x|, no Abs pass)
  perrow   Div(x, Δ) -> Q: a per-axis QuantizeLinear on the 2-D view, Q(Reshape(x, [-1, K]),
           Reshape(Δ, [-1]), 128, axis=0), reshaped back to x's shape (no Div pass)
  blocked  Div(x, Δ) -> Q: an opset-21 blocked QuantizeLinear(x, Δ, zp, axis=-1, block_size=K),
           the zero point Expand(128, Shape(Δ)) built at run time
  mmitf    MatMul(DQ(q), DQ(W)) -> Mul(Δ) written as com.microsoft MatMulIntegerToFloat(q, W, Δ,
           s_w, 128, 0) (a [..., T, 1] a_scale: onnxruntime scales the output inside the op)
  div      a file written since issue 13 back to the older form (Abs + ReduceMax, Div(x, Δ),
           Q(·, 1, 128)): the baseline of the table, from today's sqopt
  Combine with "+", e.g. minmax+perrow+mmitf. `codes A.onnx B.onnx` compares every activation's
  uint8 codes (QuantizeLinear outputs of the same name) and the outputs on the eval texts; `ties`
  the same on synthetic rows whose values sit on rounding ties.

  .venv/bin/python tools/ort_forms.py rewrite build/bench/smollm2/sqopt-O3.onnx u8 /tmp/o3-u8.onnx
  .venv/bin/python tools/ort_forms.py time build/real/smollm2/model.onnx build/bench/smollm2/sqopt-O3.onnx /tmp/o3-u8.onnx
  .venv/bin/python tools/ort_forms.py profile build/bench/smollm2/sqopt-O1-ort.onnx

Issue 13 (docs/deployment.md, "The O1 form"): from a file written before it
(`quantize{policy=O1,target=onnxruntime}`, the Div form), e.g.

  .venv/bin/python tools/ort_forms.py rewrite O1-div.onnx minmax+blocked /tmp/o1-mb.onnx
  .venv/bin/python tools/ort_forms.py codes O1-div.onnx /tmp/o1-mb.onnx --real build/real/minilm/model.onnx
  .venv/bin/python tools/ort_forms.py time O1-div.onnx /tmp/o1-mb.onnx /tmp/minilm-dyn.onnx --runs 40

`time` runs every model once per round (A/B interleaved, the order rotated) and prints the
1-minute load average at start and end.
"""
import argparse
import collections
import json
import statistics
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def consumers(graph):
    found = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            found[i].append(n)
    return found


def rewrite(model, form):
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    g.initializer.extend([numpy_helper.from_array(np.array(128, np.uint8), "zp_u8_128"),
                          numpy_helper.from_array(np.array(1.0, np.float32), "one_f32")])
    readers = consumers(g)
    for q in list(g.node):
        if q.op_type != "QuantizeLinear":
            continue
        dqs = [c for c in readers[q.output[0]] if c.op_type == "DequantizeLinear"]
        blocked = any(a.name == "block_size" and a.i > 0 for a in q.attribute)
        if q.input[1] in inits and not blocked:  # static per tensor
            q.input[2] = "zp_u8_128"
            for dq in dqs:
                dq.input[2] = "zp_u8_128"
            continue
        x, s = q.input[0], q.input[1]
        scaled = q.output[0] + "_xdivs"
        g.node.insert(list(g.node).index(q), helper.make_node("Div", [x, s], [scaled], name=q.name + "/Div"))
        del q.attribute[:]
        del q.input[:]
        q.input.extend([scaled, "one_f32", "zp_u8_128"])
        for dq in dqs:
            del dq.attribute[:]
            del dq.input[:]
            dq.input.extend([q.output[0], "one_f32", "zp_u8_128"])
            for mm in readers[dq.output[0]]:
                y = mm.output[0]
                mm.output[0] = y + "_unscaled_" + str(abs(hash(q.name)) % 10**6)
                mul = helper.make_node("Mul", [mm.output[0], s], [y], name=mm.name + "/Scale/" + q.name)
                g.node.insert(list(g.node).index(mm) + 1, mul)
    if form == "u8mi":
        producer = {o: n for n in g.node for o in n.output}
        for mm in list(g.node):
            if mm.op_type != "MatMul":
                continue
            pa, pb = producer.get(mm.input[0]), producer.get(mm.input[1])
            if not (pa and pb and pa.op_type == "DequantizeLinear" and pb.op_type == "DequantizeLinear"
                    and pb.input[0] in inits):
                continue
            acc = mm.output[0] + "_i32"
            nodes = [helper.make_node("MatMulInteger", [pa.input[0], pb.input[0], pa.input[2]], [acc], name=mm.name + "/MatMulInteger"),
                     helper.make_node("Cast", [acc], [acc + "_f"], to=TensorProto.FLOAT, name=mm.name + "/Cast"),
                     helper.make_node("Mul", [pa.input[1], pb.input[1]], [mm.name + "_scale"], name=mm.name + "/ScaleMul"),
                     helper.make_node("Mul", [acc + "_f", mm.name + "_scale"], [mm.output[0]], name=mm.name + "/Mul")]
            index = list(g.node).index(mm)
            g.node.remove(mm)
            for k, n in enumerate(nodes):
                g.node.insert(index + k, n)
    return model


O1_FORMS = ("div", "minmax", "perrow", "blocked", "mmitf")


def rewrite_o1(model, forms):
    """The O1 forms of the module docstring, applied in this order to an onnxruntime-target file."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    zp = "sq_uint8_zero_point"
    counter = collections.Counter()

    def const(name, array):
        if name not in inits:
            inits[name] = numpy_helper.from_array(array, name)
            g.initializer.append(inits[name])
        return name

    def replace(old, new_nodes):
        index = list(g.node).index(old)
        g.node.remove(old)
        for k, n in enumerate(new_nodes):
            g.node.insert(index + k, n)

    def drop_dead():
        outputs = {o.name for o in g.output}
        while True:
            read = {i for n in g.node for i in n.input} | outputs
            dead = [n for n in g.node if n.op_type not in ("Constant",) and not any(o in read for o in n.output)]
            if not dead:
                return
            for n in dead:
                g.node.remove(n)

    if "div" in forms:
        # Today's form back to the older one: max |x| as ReduceMax(Abs(x)); Q(x, Δ, zp) as
        # Q(Div(x, Δ), 1, 128).
        producer = {o: n for n in g.node for o in n.output}
        for mx in [n for n in g.node if n.op_type == "Max" and n.name.endswith("/scale/AbsMax")]:
            high = producer[mx.input[0]]
            b = mx.name[: -len("AbsMax")]
            replace(mx, [helper.make_node("Abs", [high.input[0]], [b + "Abs_output"], name=b + "Abs"),
                         helper.make_node("ReduceMax", [b + "Abs_output"] + list(high.input[1:]), [mx.output[0]], name=b + "ReduceMax",
                                          keepdims=next((a.i for a in high.attribute if a.name == "keepdims"), 1))])
            counter["abs"] += 1
        for q in [n for n in g.node if n.op_type == "QuantizeLinear"]:
            scale = producer.get(q.input[1])
            if scale is None or not scale.name.endswith("/scale/Max"):
                continue
            x, delta = q.input[0], q.input[1]
            b = scale.name[: -len("Max")]
            g.node.insert(list(g.node).index(q), helper.make_node("Div", [x, delta], [b + "Apply_output"], name=b + "Apply"))
            del q.attribute[:]
            del q.input[:]
            q.input.extend([b + "Apply_output", "sq_unit_scale", zp])
            counter["div"] += 1
        drop_dead()

    producer = {o: n for n in g.node for o in n.output}
    readers = consumers(g)
    # The activations: Q(Div(x, Δ), 1, 128) with K from a consumer's weight.
    sites = []
    for q in g.node:
        div = producer.get(q.input[0]) if q.op_type == "QuantizeLinear" else None
        if div is None or div.op_type != "Div" or not div.name.endswith("/scale/Apply"):
            continue
        k = None
        for dq in readers[q.output[0]]:
            for mm in readers[dq.output[0]]:
                wdq = producer.get(mm.input[1]) if mm.op_type == "MatMul" else None
                if wdq is not None and wdq.op_type == "DequantizeLinear" and wdq.input[0] in inits:
                    k = inits[wdq.input[0]].dims[0]
        sites.append((q, div, k))

    if "minmax" in forms:
        for absn in [n for n in g.node if n.op_type == "Abs"]:
            users = readers[absn.output[0]]
            if len(users) != 1 or users[0].op_type != "ReduceMax":
                continue
            red, x = users[0], absn.input[0]
            keep = [a for a in red.attribute if a.name == "keepdims"]
            kd = keep[0].i if keep else 1
            axes = list(red.input[1:])
            b = red.name + "/minmax"
            replace(red, [helper.make_node("ReduceMax", [x] + axes, [b + "_max"], name=b + "/ReduceMax", keepdims=kd),
                          helper.make_node("ReduceMin", [x] + axes, [b + "_min"], name=b + "/ReduceMin", keepdims=kd),
                          helper.make_node("Neg", [b + "_min"], [b + "_negmin"], name=b + "/Neg"),
                          helper.make_node("Max", [b + "_max", b + "_negmin"], [red.output[0]], name=b + "/Max")])
            g.node.remove(absn)
            counter["minmax"] += 1

    for q, div, k in sites:
        x, delta = div.input[0], div.input[1]
        b = q.name
        if "perrow" in forms and k:
            new = [helper.make_node("Reshape", [x, const(f"ort_forms_rows_{k}", np.array([-1, k], np.int64))], [b + "_x2d"], name=b + "/Reshape2D"),
                   helper.make_node("Reshape", [delta, const("ort_forms_flat", np.array([-1], np.int64))], [b + "_delta1d"], name=b + "/ReshapeScale"),
                   helper.make_node("Shape", [b + "_delta1d"], [b + "_rows"], name=b + "/Rows"),
                   helper.make_node("Expand", [const("ort_forms_zp_1d", np.array([128], np.uint8)), b + "_rows"], [b + "_zp1d"], name=b + "/ZeroPoint"),
                   helper.make_node("QuantizeLinear", [b + "_x2d", b + "_delta1d", b + "_zp1d"], [b + "_q2d"], name=b + "/PerRow", axis=0),
                   helper.make_node("Shape", [x], [b + "_xshape"], name=b + "/Shape"),
                   helper.make_node("Reshape", [b + "_q2d", b + "_xshape"], [q.output[0]], name=b + "/ReshapeBack")]
            replace(q, new)
            counter["perrow"] += 1
        elif "blocked" in forms and k:
            new = [helper.make_node("Shape", [delta], [b + "_dshape"], name=b + "/ScaleShape"),
                   helper.make_node("Expand", [const("ort_forms_zp_1d", np.array([128], np.uint8)), b + "_dshape"], [b + "_zpb"], name=b + "/ZeroPoint"),
                   helper.make_node("QuantizeLinear", [x, delta, b + "_zpb"], [q.output[0]], name=b + "/Blocked", axis=-1, block_size=k)]
            replace(q, new)
            counter["blocked"] += 1

    if "mmitf" in forms:
        producer = {o: n for n in g.node for o in n.output}
        readers = consumers(g)
        for mul in [n for n in g.node if n.op_type == "Mul" and n.name.endswith("/ApplyScale")]:
            mm = producer.get(mul.input[0])
            if mm is None or mm.op_type != "MatMul":
                continue
            adq, wdq = producer.get(mm.input[0]), producer.get(mm.input[1])
            if not (adq and wdq and adq.op_type == wdq.op_type == "DequantizeLinear"):
                continue
            fused = helper.make_node("MatMulIntegerToFloat", [adq.input[0], wdq.input[0], mul.input[1], wdq.input[1], zp],
                                     [mul.output[0]], name=mm.name + "/MatMulIntegerToFloat", domain="com.microsoft")
            replace(mul, [fused])
            g.node.remove(mm)
            counter["mmitf"] += 1
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    drop_dead()
    print("rewrote", dict(counter), file=sys.stderr)
    return model


def session(path, threads=1, **options):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    for key, value in options.items():
        setattr(so, key, value)
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def feed_for(sess):
    """Random token ids: SmolLM2 1 x 256, or MiniLM 8 x 128 (with mask and token types)."""
    rng = np.random.default_rng(0)
    names = [i.name for i in sess.get_inputs()]
    if "token_type_ids" in names or "attention_mask" in names:
        full = {"input_ids": rng.integers(0, 30522, size=(8, 128), dtype=np.int64),
                "attention_mask": np.ones((8, 128), np.int64), "token_type_ids": np.zeros((8, 128), np.int64)}
        return {k: v for k, v in full.items() if k in names}
    return {"input_ids": rng.integers(0, 49152, size=(1, 256), dtype=np.int64)}


def fused_ops(path):
    sess = session(path, optimized_model_filepath=path + ".opt.onnx")
    del sess
    model = onnx.load(path + ".opt.onnx", load_external_data=False)
    return collections.Counter(n.op_type for n in model.graph.node)


def command_rewrite(args):
    forms = args.form.split("+")
    if all(f in O1_FORMS for f in forms):
        model = rewrite_o1(onnx.load(args.qdq), forms)
    elif len(forms) == 1 and forms[0] in ("u8", "u8mi"):
        model = rewrite(onnx.load(args.qdq), forms[0])
    else:
        raise SystemExit(f"ort_forms: unknown form {args.form}")
    onnx.save(model, args.out)
    print(args.out, dict(fused_ops(args.out).most_common(8)))


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def command_time(args):
    """Every model in every round (A/B interleaved, the order rotated each round), so a busy
    machine slows all of them alike; medians and minima per model, the first the reference."""
    print(f"1-minute load average at start {load_average():.2f}", flush=True)
    sessions = [session(path, args.threads) for path in args.models]
    feeds = [feed_for(sess) for sess in sessions]
    for sess, feed in zip(sessions, feeds):
        for _ in range(args.warmup):
            sess.run(None, feed)
    times = [[] for _ in args.models]
    outs = [None] * len(args.models)
    for r in range(args.runs):
        for j in range(len(args.models)):
            i = (j + r) % len(args.models)
            start = time.perf_counter()
            out = sessions[i].run(None, feeds[i])[0]
            times[i].append((time.perf_counter() - start) * 1000)
            outs[i] = out.astype(np.float64)
    reference = outs[0]
    base = statistics.median(times[0])
    for path, t, out in zip(args.models, times, outs):
        rel = np.linalg.norm(out - reference) / np.linalg.norm(reference)
        p25 = statistics.quantiles(t, n=4)[0] if len(t) > 1 else t[0]
        print(f"{path:50s} median {statistics.median(t):8.1f} ms  p25 {p25:8.1f}  min {min(t):8.1f} ms  "
              f"{base / statistics.median(t):5.2f}x the first  rel. L2 vs the first {rel:.2e}", flush=True)
    print(f"1-minute load average at end {load_average():.2f}", flush=True)


def eval_feeds(model_path, limit):
    """The eval texts next to a real model (build/real/X/eval/test_data_set_N/input_K.pb)."""
    import glob
    import os
    real = os.path.dirname(os.path.abspath(model_path))
    for d in sorted(glob.glob(os.path.join(real, "eval", "test_data_set_*")))[:limit]:
        yield [numpy_helper.to_array(onnx.load_tensor(f)) for f in sorted(glob.glob(os.path.join(d, "input_*.pb")))]


def command_codes(args):
    """onnxruntime's uint8 codes of every QuantizeLinear output both files name, and the
    outputs, on real activations (the eval texts of --real)."""
    import os
    import tempfile
    tmp = tempfile.mkdtemp(prefix="ort-codes-")
    models = [onnx.load(p) for p in (args.a, args.b)]
    names = [{n.output[0] for n in m.graph.node if n.op_type == "QuantizeLinear"} |
             {n.output[0] for n in m.graph.node if n.op_type == "Reshape" and n.name.endswith("/ReshapeBack")} for m in models]
    shared = sorted(names[0] & names[1])
    sessions = []
    for k, m in enumerate(models):
        outputs = [o.name for o in m.graph.output]
        m.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.UINT8, None) for n in shared)
        path = os.path.join(tmp, f"{k}.onnx")
        onnx.save(m, path, save_as_external_data=True, location=f"{k}.data")
        sessions.append(session(path))
    mismatched = total = 0
    worst = 0.0
    samples = 0
    for feed in eval_feeds(args.real, args.samples):
        samples += 1
        inputs = {i.name: v for i, v in zip(sessions[0].get_inputs(), feed)}
        ra, rb = (s.run(None, inputs) for s in sessions)
        n_out = len(ra) - len(shared)
        for x, y in zip(ra[n_out:], rb[n_out:]):
            mismatched += int(np.count_nonzero(x != y))
            total += x.size
        for x, y in zip(ra[:n_out], rb[:n_out]):
            worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y)) / (np.max(np.abs(x)) + 1e-30)))
    print(f"{len(shared)} activations, {samples} texts: {mismatched} of {total} codes differ; "
          f"outputs: max |a - b| / max |a| = {worst:.2e}")


def command_ties(args):
    """Synthetic rows (half the values on a rounding tie k + 0.5 of Δ, or one ulp off it):
    onnxruntime's codes of the blocked and the per-row Q against Q(Div(x, Δ), 1, 128)."""
    k = args.k
    N = helper.make_node
    init = [numpy_helper.from_array(np.array(128, np.uint8), "zp"), numpy_helper.from_array(np.array([128], np.uint8), "zp1"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"), numpy_helper.from_array(np.array(127.0, np.float32), "c127"),
            numpy_helper.from_array(np.array(2.0 ** -126, np.float32), "tiny"), numpy_helper.from_array(np.array([-1], np.int64), "ax"),
            numpy_helper.from_array(np.array([-1, k], np.int64), "rows"), numpy_helper.from_array(np.array([-1], np.int64), "flat")]
    nodes = [N("Abs", ["x"], ["a"]), N("ReduceMax", ["a", "ax"], ["r"], keepdims=1), N("Div", ["r", "c127"], ["d"]),
             N("Max", ["d", "tiny"], ["s"]), N("Div", ["x", "s"], ["xs"]), N("QuantizeLinear", ["xs", "one", "zp"], ["div"]),
             N("Shape", ["s"], ["ss"]), N("Expand", ["zp1", "ss"], ["zpb"]),
             N("QuantizeLinear", ["x", "s", "zpb"], ["blocked"], axis=-1, block_size=k),
             N("Reshape", ["x", "rows"], ["x2"]), N("Reshape", ["s", "flat"], ["s1"]), N("Shape", ["s1"], ["s1s"]),
             N("Expand", ["zp1", "s1s"], ["zpr"]), N("QuantizeLinear", ["x2", "s1", "zpr"], ["q2"], axis=0),
             N("Shape", ["x"], ["xsh"]), N("Reshape", ["q2", "xsh"], ["perrow"])]
    graph = helper.make_graph(nodes, "ties", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, None, k])],
                              [helper.make_tensor_value_info(n, TensorProto.UINT8, None) for n in ("div", "blocked", "perrow")], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    bad, total = [0, 0], 0
    for _ in range(args.trials):
        x = (rng.standard_normal((2, 64, k)) * rng.uniform(0.01, 100)).astype(np.float32)
        amax = np.abs(x).max(-1, keepdims=True)
        delta = np.maximum(amax / np.float32(127), np.float32(2.0 ** -126)).astype(np.float32)
        tie = ((rng.integers(-128, 128, size=x.shape).astype(np.float32) + np.float32(0.5)) * delta).astype(np.float32)
        off = np.nextafter(tie, (np.float32(np.inf) * np.sign(rng.standard_normal(x.shape))).astype(np.float32)).astype(np.float32)
        tie = np.where(rng.random(x.shape) < 0.3, off, tie)
        x = np.where(rng.random(x.shape) < 0.5, np.clip(tie, -amax, amax), x).astype(np.float32)
        ref, blocked, perrow = sess.run(None, {"x": x})
        bad[0] += int(np.count_nonzero(ref != blocked))
        bad[1] += int(np.count_nonzero(ref != perrow))
        total += ref.size
    print(f"codes differing from Q(Div(x, Δ), 1, 128): blocked {bad[0]}, per-row {bad[1]}, of {total}")


def command_profile(args):
    import tempfile
    prefix = tempfile.mkdtemp(prefix="ort-profile-") + "/profile"
    sess = session(args.model, args.threads, enable_profiling=True, profile_file_prefix=prefix)
    feed = feed_for(sess)
    for _ in range(args.runs):
        sess.run(None, feed)
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    per_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"] / 1000 / args.runs
    total = sum(per_op.values())
    for op, ms in per_op.most_common(15):
        print(f"{op:28s} {ms:8.1f} ms {100 * ms / total:5.1f}%")
    print(f"total {total:.1f} ms per run")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rewrite")
    p.add_argument("qdq")
    p.add_argument("form", help="u8, u8mi (QDQ files), or O1 forms joined by +: " + ", ".join(O1_FORMS))
    p.add_argument("out")
    p = sub.add_parser("time")
    p.add_argument("models", nargs="+", help="the first is the reference for the rel. L2 column")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p = sub.add_parser("codes")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--real", required=True, help="the real model next to the eval/ texts, e.g. build/real/minilm/model.onnx")
    p.add_argument("--samples", type=int, default=8)
    p = sub.add_parser("ties")
    p.add_argument("--k", type=int, default=384)
    p.add_argument("--trials", type=int, default=200)
    p = sub.add_parser("profile")
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    {"rewrite": command_rewrite, "time": command_time, "codes": command_codes, "ties": command_ties, "profile": command_profile}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
