#!/usr/bin/env python3
"""Convert a float32 ONNX model to float16 or bfloat16, the way LLM exporters write them.

Every float32 tensor of the graph becomes the target type: initializers (values outside the
target's finite range are clamped to ±max and counted, e.g. an exporter's float32.min mask
constant becomes -65504 in float16), `Constant` nodes (value, value_float(s)),
`ConstantOfShape` values, `Cast(to=FLOAT)`, value_info, and the graph's float inputs and
outputs. Integer tensors, shapes and indices are left alone. For bfloat16 below opset 20,
`ConstantOfShape` (which has no bfloat16 form there) stays float32 with a Cast after it.

Mixed precision: `--keep-fp32 REGEX` keeps the nodes whose name or op type matches in float32
(e.g. the norms); their float inputs get a `Cast(to=FLOAT)` and their float outputs a
`Cast(to=TARGET)` where a converted node reads them, as mixed-precision exporters do. The
initializers only such nodes read stay float32.

    .venv/bin/python tools/convert_float16.py build/real/minilm/model.onnx build/fp16/minilm/model.onnx
    .venv/bin/python tools/convert_float16.py --dtype bfloat16 IN.onnx OUT.onnx
    .venv/bin/python tools/convert_float16.py --keep-fp32 'LayerNormalization' IN.onnx OUT.onnx
    .venv/bin/python tools/convert_float16.py --copy-data IN_DIR/model.onnx OUT_DIR/model.onnx

`--copy-data` also copies the calibration and test data beside the input (`calib/`, `eval/`,
`test_data_set_*`, `tokenizer.json`, `data-manifest.json`) into the output folder: the inputs
are integer token ids, so they are valid for the converted model as they are (float inputs are
converted too). The model is checked with onnx.checker (full_check) before it is written.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TARGETS = {
    "float16": (TensorProto.FLOAT16, np.float16, float(np.finfo(np.float16).max)),
    "bfloat16": (TensorProto.BFLOAT16, ml_dtypes.bfloat16, float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)),
}


class Converter:
    def __init__(self, dtype: str, keep: str | None):
        self.elem, self.np_type, self.max = TARGETS[dtype]
        self.keep = re.compile(keep) if keep else None
        self.clamped = 0
        self.casts = 0
        self.opset = 0

    def narrow(self, array: np.ndarray, name: str) -> TensorProto:
        """A float32 array as a TensorProto of the target type, clamped to its finite range."""
        finite = np.isfinite(array)
        over = finite & (np.abs(array) > self.max)
        self.clamped += int(over.sum())
        values = np.where(over, np.sign(array) * self.max, array).astype(self.np_type)
        return tensor_proto(values, name, self.elem)

    def convert_tensor(self, t: TensorProto) -> TensorProto:
        if t.data_type != TensorProto.FLOAT:
            return t
        return self.narrow(numpy_helper.to_array(t), t.name)

    def is_kept(self, node: onnx.NodeProto) -> bool:
        # ConstantOfShape takes bfloat16 only from opset 20: it stays float32 (+ Cast) before.
        if self.elem == TensorProto.BFLOAT16 and node.op_type == "ConstantOfShape" and self.opset < 20:
            return True
        return bool(self.keep) and bool(self.keep.search(node.name) or self.keep.fullmatch(node.op_type))

    def convert(self, model: onnx.ModelProto) -> onnx.ModelProto:
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        inferred = onnx.shape_inference.infer_shapes(model)
        float_values = {vi.name for vi in list(inferred.graph.value_info) + list(inferred.graph.input)
                        + list(inferred.graph.output) if vi.type.tensor_type.elem_type == TensorProto.FLOAT}
        float_values |= {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
        graph = model.graph
        nodes = list(graph.node)
        kept = {id(n) for n in nodes if self.is_kept(n)}

        # Which float values stay float32: outputs of kept nodes, initializers read only by them.
        readers: dict[str, list[onnx.NodeProto]] = {}
        for n in nodes:
            for name in n.input:
                readers.setdefault(name, []).append(n)
        wide: set[str] = set()
        for n in nodes:
            if id(n) in kept:
                wide.update(o for o in n.output if o in float_values)
        for t in graph.initializer:
            users = readers.get(t.name, [])
            if t.data_type == TensorProto.FLOAT and users and all(id(u) in kept for u in users):
                wide.add(t.name)

        for i, t in enumerate(graph.initializer):
            if t.name not in wide:
                graph.initializer[i].CopyFrom(self.convert_tensor(t))

        new_nodes: list[onnx.NodeProto] = []
        cast_cache: dict[tuple[str, int], str] = {}

        def cast(name: str, to: int) -> str:
            key = (name, to)
            if key not in cast_cache:
                out = f"{name}_cast_{'fp32' if to == TensorProto.FLOAT else 'narrow'}"
                new_nodes.append(helper.make_node("Cast", [name], [out], name=f"{out}/Cast", to=to))
                self.casts += 1
                cast_cache[key] = out
            return cast_cache[key]

        for n in nodes:
            is_wide = id(n) in kept
            if not is_wide:
                self.convert_node_attributes(n)
            for k, name in enumerate(n.input):
                if name not in float_values:
                    continue
                if is_wide and name not in wide:
                    n.input[k] = cast(name, TensorProto.FLOAT)
                elif not is_wide and name in wide:
                    n.input[k] = cast(name, self.elem)
            new_nodes.append(n)

        # Graph outputs keep their names: a float32 output computed by a kept node gets a
        # narrowing Cast in front (renaming the producer's output).
        for out in graph.output:
            if out.name in wide:
                inner = out.name + "_fp32"
                for n in new_nodes:
                    n.output[:] = [inner if o == out.name else o for o in n.output]
                    n.input[:] = [inner if i == out.name else i for i in n.input]
                new_nodes.append(helper.make_node("Cast", [inner], [out.name], name=out.name + "/Cast", to=self.elem))
                self.casts += 1

        del graph.node[:]
        graph.node.extend(new_nodes)
        for vi in list(graph.input) + list(graph.output):
            if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
                vi.type.tensor_type.elem_type = self.elem
        for vi in graph.value_info:
            if vi.type.tensor_type.elem_type == TensorProto.FLOAT and vi.name not in wide:
                vi.type.tensor_type.elem_type = self.elem
        return model

    def convert_node_attributes(self, n: onnx.NodeProto) -> None:
        if n.op_type == "Cast" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = self.elem
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for i, a in enumerate(n.attribute):
                if a.name == "value_float":
                    replacement = helper.make_attribute("value", self.narrow(np.array(a.f, np.float32), ""))
                elif a.name == "value_floats":
                    replacement = helper.make_attribute("value", self.narrow(np.array(a.floats, np.float32), ""))
                else:
                    continue
                n.attribute[i].CopyFrom(replacement)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(self.convert_tensor(a.t))
            if a.type == onnx.AttributeProto.GRAPH:
                raise SystemExit(f"error: node '{n.name}' ({n.op_type}) has a subgraph; not supported")


def widen_bfloat16_for_ort(model: onnx.ModelProto) -> onnx.ModelProto:
    """An equivalent float32 model of a bfloat16 one that onnxruntime's CPU provider runs.

    onnxruntime 1.32 has no CPU kernel for bfloat16 MatMul, Add, Abs, Erf, QuantizeLinear,
    DequantizeLinear, ... (only Cast), so a bfloat16 model cannot be run there. This rewrite
    computes every node in float32 and rounds each bfloat16 result with a Cast pair
    (float32 → bfloat16 → float32): the numbers a bfloat16 run with float32 arithmetic inside
    each op gives. bfloat16 constants widen exactly; graph I/O become float32.
    """
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    bf16 = {vi.name for vi in list(graph.value_info) + list(graph.output) + list(graph.input)
             if vi.type.tensor_type.elem_type == TensorProto.BFLOAT16}

    def widen(t: TensorProto) -> TensorProto:
        if t.data_type != TensorProto.BFLOAT16:
            return t
        w = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name)
        return w

    for i, t in enumerate(graph.initializer):
        graph.initializer[i].CopyFrom(widen(t))
    nodes: list[onnx.NodeProto] = []
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                a.t.CopyFrom(widen(a.t))
            if n.op_type in ("Cast", "CastLike") and a.name == "to" and a.i == TensorProto.BFLOAT16:
                a.i = TensorProto.FLOAT
        nodes.append(n)
        if n.op_type == "Constant":
            continue
        for k, out in enumerate(n.output):
            if out in bf16:
                n.output[k] = out + "__f32"
                nodes.append(helper.make_node("Cast", [out + "__f32"], [out + "__bf16"], to=TensorProto.BFLOAT16))
                nodes.append(helper.make_node("Cast", [out + "__bf16"], [out], to=TensorProto.FLOAT))
    del graph.node[:]
    graph.node.extend(nodes)
    for vi in list(graph.input) + list(graph.output):
        if vi.type.tensor_type.elem_type == TensorProto.BFLOAT16:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.value_info[:]
    return model


def tensor_proto(values: np.ndarray, name: str, elem: int) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.data_type = elem
    t.dims.extend(values.shape)
    t.raw_data = np.ascontiguousarray(values).view(np.uint16).tobytes()
    return t


def copy_data(src: Path, dst: Path, converter: Converter) -> None:
    for item in sorted(src.iterdir()):
        if item.name in ("calib", "eval") or item.name.startswith("test_data_set_"):
            copy_tree_converting(item, dst / item.name, converter)
        elif item.name in ("tokenizer.json", "data-manifest.json"):
            shutil.copy2(item, dst / item.name)


def copy_tree_converting(src: Path, dst: Path, converter: Converter) -> None:
    """Copies a folder of test-data sets; float32 TensorProto files (inputs and reference
    outputs) are converted to the target type so they match the converted graph."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".pb":
            t = TensorProto()
            t.ParseFromString(path.read_bytes())
            target.write_bytes(converter.convert_tensor(t).SerializeToString())
        elif path.suffix == ".npy":
            a = np.load(path)
            np.save(target, a.astype(converter.np_type) if a.dtype == np.float32 else a)
        else:
            shutil.copy2(path, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--dtype", choices=sorted(TARGETS), default="float16")
    parser.add_argument("--keep-fp32", metavar="REGEX",
                        help="nodes whose name (search) or op type (full match) matches stay float32")
    parser.add_argument("--copy-data", action="store_true", help="also copy calib/, eval/, test_data_set_* beside the model")
    args = parser.parse_args()
    if args.output.resolve() == args.input.resolve():
        raise SystemExit("error: output would overwrite the input")
    model = onnx.load(str(args.input))
    converter = Converter(args.dtype, args.keep_fp32)
    converter.convert(model)
    onnx.checker.check_model(model, full_check=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.output))
    print(f"{args.output}: {args.dtype}, {converter.clamped} values clamped to ±{converter.max:g}, "
          f"{converter.casts} Casts inserted", file=sys.stderr)
    if args.copy_data:
        copy_data(args.input.parent, args.output.parent, converter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
