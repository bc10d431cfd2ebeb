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

  .venv/bin/python tools/ort_forms.py rewrite build/bench/smollm2/sqopt-O3.onnx u8 /tmp/o3-u8.onnx
  .venv/bin/python tools/ort_forms.py time build/real/smollm2/model.onnx build/bench/smollm2/sqopt-O3.onnx /tmp/o3-u8.onnx
  .venv/bin/python tools/ort_forms.py profile build/bench/smollm2/sqopt-O1-ort.onnx
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
    onnx.save(rewrite(onnx.load(args.qdq), args.form), args.out)
    print(args.out, dict(fused_ops(args.out).most_common(8)))


def command_time(args):
    reference = None
    for path in args.models:
        sess = session(path, args.threads)
        feed = feed_for(sess)
        for _ in range(args.warmup):
            sess.run(None, feed)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            out = sess.run(None, feed)[0].astype(np.float64)
            times.append((time.perf_counter() - start) * 1000)
        reference = out if reference is None else reference
        rel = np.linalg.norm(out - reference) / np.linalg.norm(reference)
        print(f"{path:50s} {statistics.median(times):8.1f} ms  rel. L2 vs the first {rel:.4f}", flush=True)


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
    p.add_argument("form", choices=["u8", "u8mi"])
    p.add_argument("out")
    p = sub.add_parser("time")
    p.add_argument("models", nargs="+", help="the first is the reference for the rel. L2 column")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p = sub.add_parser("profile")
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    {"rewrite": command_rewrite, "time": command_time, "profile": command_profile}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
