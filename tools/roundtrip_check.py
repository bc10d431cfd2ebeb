#!/usr/bin/env python3
"""Checks that ONNX files re-encoded by sqopt behave exactly like their originals in onnxruntime.

Usage:
    tools/roundtrip_check.py --pairs PAIRS.tsv      # lines: ORIGINAL<TAB>REENCODED
    tools/roundtrip_check.py ORIGINAL REENCODED

For each pair: when onnxruntime can load the original, it must load the re-encoded file too,
and with the inputs of `test_data_set_0/` beside the original (ONNX backend-test layout) both
must give bit-identical outputs. Originals onnxruntime cannot load, and nondeterministic models
(two runs of the original disagree), are counted as skipped. Exit status 1 when any pair differs.
"""
import argparse
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def load_inputs(model_path):
    """Inputs from test_data_set_0/input_N.pb, parsed according to the model's input types."""
    folder = os.path.join(os.path.dirname(model_path), "test_data_set_0")
    files = sorted(glob.glob(os.path.join(folder, "input_*.pb")),
                   key=lambda p: int(os.path.basename(p)[6:-3]))
    if not files:
        return None
    model = onnx.load(model_path, load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    feeds = {}
    for path, info in zip(files, graph_inputs):
        data = open(path, "rb").read()
        kind = info.type.WhichOneof("value")
        if kind == "sequence_type":
            proto = onnx.SequenceProto()
            proto.ParseFromString(data)
            feeds[info.name] = numpy_helper.to_list(proto)
        elif kind == "optional_type":
            proto = onnx.OptionalProto()
            proto.ParseFromString(data)
            feeds[info.name] = numpy_helper.to_optional(proto)
        elif kind == "map_type":
            proto = onnx.MapProto()
            proto.ParseFromString(data)
            feeds[info.name] = numpy_helper.to_dict(proto)
        else:
            proto = onnx.TensorProto()
            proto.ParseFromString(data)
            feeds[info.name] = numpy_helper.to_array(proto)
    return feeds


def same(a, b):
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def check(original, reencoded):
    """Returns ("equal" | "skipped" | "different", detail)."""
    try:
        reference = session(original)
    except Exception as error:  # onnxruntime does not support the original either
        return "skipped", f"onnxruntime cannot load the original: {str(error).splitlines()[0][:120]}"
    try:
        candidate = session(reencoded)
    except Exception as error:
        return "different", f"onnxruntime cannot load the re-encoded file: {str(error).splitlines()[0][:200]}"
    try:
        feeds = load_inputs(original)
    except Exception as error:
        return "skipped", f"cannot read test inputs: {error}"
    if feeds is None:
        return "equal", "loads (no test inputs)"
    try:
        expected = reference.run(None, feeds)
    except Exception as error:
        return "skipped", f"onnxruntime cannot run the original: {str(error).splitlines()[0][:120]}"
    try:
        actual = candidate.run(None, feeds)
    except Exception as error:
        return "different", f"the re-encoded file fails to run: {str(error).splitlines()[0][:200]}"
    if all(same(x, y) for x, y in zip(expected, actual)) and len(expected) == len(actual):
        return "equal", ""
    again = reference.run(None, feeds)
    if not all(same(x, y) for x, y in zip(expected, again)):
        return "skipped", "nondeterministic outputs"
    return "different", "outputs differ"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", help="TSV file of ORIGINAL<TAB>REENCODED lines")
    parser.add_argument("files", nargs="*", help="ORIGINAL REENCODED")
    parser.add_argument("--verbose", action="store_true", help="print every pair's result")
    args = parser.parse_args()
    pairs = []
    if args.pairs:
        with open(args.pairs) as listing:
            pairs = [line.rstrip("\n").split("\t") for line in listing if line.strip()]
    if args.files:
        if len(args.files) != 2:
            parser.error("give ORIGINAL REENCODED")
        pairs.append(args.files)
    counts = {"equal": 0, "skipped": 0, "different": 0}
    for original, reencoded in pairs:
        verdict, detail = check(original, reencoded)
        counts[verdict] += 1
        if verdict == "different" or args.verbose:
            print(f"{verdict}: {original}: {detail}")
    print(f"roundtrip_check: {counts['equal']} equal, {counts['skipped']} skipped, "
          f"{counts['different']} different, of {len(pairs)} models")
    return 1 if counts["different"] else 0


if __name__ == "__main__":
    sys.exit(main())
