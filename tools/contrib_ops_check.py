#!/usr/bin/env python3
"""One-node models of the onnxruntime contrib ops sqopt runs, with onnxruntime's outputs.

For each case it writes OUT/<case>/model.onnx and OUT/<case>/test_data_set_0/{input,output}_N.pb
(the model-zoo layout), the outputs computed by onnxruntime (CPU). The Swift tests
(Tests/SQRuntimeTests/ContribOpsTests.swift) run the interpreter on the same inputs and compare.

  python tools/contrib_ops_check.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxruntime as ort

MS = "com.microsoft"
rng = np.random.default_rng(16)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def case(out: Path, name: str, op: str, domain: str, inputs: dict[str, np.ndarray],
         outputs: list[str], opset: int = 17, **attributes) -> None:
    """`inputs` in the node's order; a None value is an omitted optional input."""
    node_inputs = [k if v is not None else "" for k, v in inputs.items()]
    fed = {k: v for k, v in inputs.items() if v is not None}
    node = helper.make_node(op, node_inputs, outputs, domain=domain, **attributes)
    graph_inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
                    for k, v in fed.items()]
    graph_outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o]
    graph = helper.make_graph([node], name, graph_inputs, graph_outputs)
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10 if opset >= 21 else 8)
    folder = out / name
    data = folder / "test_data_set_0"
    data.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    results = session.run([o for o in outputs if o], fed)
    for i, (k, v) in enumerate(fed.items()):
        (data / f"input_{i}.pb").write_bytes(numpy_helper.from_array(v, k).SerializeToString())
    for i, (o, v) in enumerate(zip([o for o in outputs if o], results)):
        (data / f"output_{i}.pb").write_bytes(numpy_helper.from_array(np.asarray(v), o).SerializeToString())
    print(f"{name}: {op} -> {[np.asarray(r).shape for r in results]}")


def case_with_weights(out: Path, name: str, node, inputs: dict[str, np.ndarray],
                      weights: dict[str, np.ndarray]) -> None:
    """One node whose constant operands are initializers (MatMulNBits)."""
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                              ir_version=8)
    folder = out / name
    (folder / "test_data_set_0").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    (result,) = session.run(None, inputs)
    for i, (k, v) in enumerate(inputs.items()):
        (folder / "test_data_set_0" / f"input_{i}.pb").write_bytes(numpy_helper.from_array(v, k).SerializeToString())
    (folder / "test_data_set_0" / "output_0.pb").write_bytes(
        numpy_helper.from_array(result, node.output[0]).SerializeToString())
    print(f"{name}: MatMulNBits -> {result.shape}")


def matmul_nbits(out: Path, name: str, k: int, n: int, block: int, zero_points: bool, bias: bool) -> None:
    blocks = (k + block - 1) // block
    b = rng.integers(0, 256, size=(n, blocks, block // 2), dtype=np.uint8)
    weights = {"B": b, "scales": (rng.random(n * blocks) * 0.1 + 0.01).astype(np.float32)}
    names = ["A", "B", "scales", "zero_points" if zero_points else "", "", "bias" if bias else ""]
    if zero_points:
        weights["zero_points"] = rng.integers(0, 256, size=(n * ((blocks * 4 + 7) // 8),), dtype=np.uint8)
    if bias:
        weights["bias"] = rand(n)
    while names[-1] == "":
        names.pop()
    node = helper.make_node("MatMulNBits", names, ["y"], domain=MS, K=k, N=n, bits=4, block_size=block)
    case_with_weights(out, name, node, {"A": rand(2, 3, k)}, weights)


def rope_caches(positions: int, half: int) -> tuple[np.ndarray, np.ndarray]:
    inv = 1.0 / (10000 ** (np.arange(half, dtype=np.float64) / half))
    angles = np.outer(np.arange(positions), inv)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def main() -> int:
    out = Path(sys.argv[1])
    x, skip = rand(2, 5, 16), rand(2, 5, 16)
    gamma, beta, bias = rand(16) + 1, rand(16, scale=0.1), rand(16, scale=0.1)
    case(out, "skip_simplified_layer_norm", "SkipSimplifiedLayerNormalization", MS,
         {"input": x, "skip": skip, "gamma": gamma}, ["y", "", "", "sum"], epsilon=1e-6)
    case(out, "skip_simplified_layer_norm_bias", "SkipSimplifiedLayerNormalization", MS,
         {"input": x, "skip": skip, "gamma": gamma, "bias": bias}, ["y", "", "", "sum"], epsilon=1e-6)
    case(out, "skip_layer_norm", "SkipLayerNormalization", MS,
         {"input": x, "skip": skip, "gamma": gamma, "beta": beta, "bias": bias}, ["y", "", "", "sum"],
         epsilon=1e-5)
    case(out, "skip_layer_norm_no_beta", "SkipLayerNormalization", MS,
         {"input": x, "skip": skip, "gamma": gamma}, ["y"])
    # onnxruntime registers SimplifiedLayerNormalization in the default domain only
    case(out, "simplified_layer_norm_onnx", "SimplifiedLayerNormalization", "",
         {"x": x, "scale": gamma}, ["y"], epsilon=1e-6)
    case(out, "layer_norm_stash", "LayerNormalization", "",
         {"x": x, "scale": gamma, "bias": beta}, ["y", "mean", "inv_std"], epsilon=1e-5)
    case(out, "fast_gelu", "FastGelu", MS, {"x": rand(2, 5, 16, scale=3), "bias": bias}, ["y"])
    case(out, "fast_gelu_no_bias", "FastGelu", MS, {"x": rand(2, 5, 16, scale=3)}, ["y"])
    case(out, "bias_gelu", "BiasGelu", MS, {"a": rand(2, 5, 16, scale=3), "b": bias}, ["y"])

    cos, sin = rope_caches(32, 4)
    positions = np.array([[3, 4, 5, 6, 7], [0, 1, 2, 9, 10]], dtype=np.int64)
    case(out, "rotary_embedding_3d", "RotaryEmbedding", MS,
         {"input": rand(2, 5, 16), "position_ids": positions, "cos_cache": cos, "sin_cache": sin},
         ["y"], num_heads=2)
    case(out, "rotary_embedding_4d_interleaved", "RotaryEmbedding", MS,
         {"input": rand(2, 2, 5, 8), "position_ids": positions, "cos_cache": cos, "sin_cache": sin},
         ["y"], interleaved=1)
    case(out, "rotary_embedding_offset", "RotaryEmbedding", MS,
         {"input": rand(1, 2, 5, 8), "position_ids": np.array([7], dtype=np.int64),
          "cos_cache": cos, "sin_cache": sin}, ["y"])
    cos2, sin2 = rope_caches(32, 2)
    case(out, "rotary_embedding_partial", "RotaryEmbedding", MS,
         {"input": rand(2, 5, 16), "position_ids": positions, "cos_cache": cos2, "sin_cache": sin2},
         ["y"], num_heads=2, rotary_embedding_dim=4)
    case(out, "rotary_embedding_onnx23", "RotaryEmbedding", "",
         {"X": rand(2, 2, 5, 8), "cos_cache": cos, "sin_cache": sin, "position_ids": positions},
         ["y"], opset=23)
    matmul_nbits(out, "matmul_nbits", 64, 8, 32, zero_points=False, bias=False)
    matmul_nbits(out, "matmul_nbits_zero_points_bias", 48, 5, 16, zero_points=True, bias=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
