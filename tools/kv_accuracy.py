#!/usr/bin/env python3
"""Accuracy of a quantized KV-cache decoder against its float model, with onnxruntime.

Both models are in the layout tools/build_smollm2_kv.py writes. On every eval sample
(`test_data_set_*/input_ids`, by default build/real/smollm2/eval), each model runs:

  prefill  the whole text with an empty past
  decode   a prefill of the first half, then one token at a time, each step feeding that
           model's own present.* back as past_key_values.* (the cache the int8 model builds
           is the one it reads)

and the script prints, per mode, perplexity of both models (token-weighted, as
tools/realmodels.py computes it), mean KL(float || quantized) of the next-token distributions,
top-1 agreement and the cosine of the logits.

  python tools/kv_accuracy.py build/kv/smollm2-kv/model.onnx build/kv/smollm2-kv/model.sq-w8a8.onnx
  python tools/kv_accuracy.py FLOAT INT8 --eval DIR --samples 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realmodels  # noqa: E402
from build_smollm2_kv import Runner, feed, presents_as_past  # noqa: E402


def empty_past_for(runner: Runner, batch: int) -> dict[str, np.ndarray]:
    past = {}
    for i in runner.session.get_inputs():
        if i.name.startswith("past_key_values."):
            _, heads, _, dim = i.shape
            past[i.name] = np.zeros((batch, heads, 0, dim), np.float32)
    return past


def prefill_logits(runner: Runner, ids: np.ndarray) -> np.ndarray:
    return runner(feed(ids, empty_past_for(runner, ids.shape[0]), 0))["logits"]


def decode_logits(runner: Runner, ids: np.ndarray) -> np.ndarray:
    """Prefill the first half, then decode the rest token by token on the model's own cache."""
    split = max(1, ids.shape[1] // 2)
    out = runner(feed(ids[:, :split], empty_past_for(runner, ids.shape[0]), 0))
    steps = [out["logits"]]
    for t in range(split, ids.shape[1]):
        out = runner(feed(ids[:, t:t + 1], presents_as_past(out), t))
        steps.append(out["logits"])
    return np.concatenate(steps, axis=1)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def compare(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """pairs of (float logits, quantized logits, input_ids)."""
    kl, top1, tokens, cosines = 0.0, 0, 0, []
    for a, b, _ in pairs:
        pa, pb = log_softmax(a), log_softmax(b)
        kl += float((np.exp(pa) * (pa - pb)).sum(axis=-1).sum())
        top1 += int((a.argmax(-1) == b.argmax(-1)).sum())
        tokens += a.shape[0] * a.shape[1]
        x, y = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        cosines.append(float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)))
    return {"ppl_float": realmodels.perplexity((a, ids) for a, _, ids in pairs),
            "ppl_quantized": realmodels.perplexity((b, ids) for _, b, ids in pairs),
            "kl": kl / tokens, "top1": top1 / tokens, "cosine_min": min(cosines),
            "cosine_mean": float(np.mean(cosines)), "tokens": tokens}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("float_model", type=Path)
    parser.add_argument("quantized_model", type=Path)
    parser.add_argument("--eval", type=Path, default=realmodels.DEFAULT_OUT / "smollm2" / "eval")
    parser.add_argument("--samples", type=int, default=None, help="use only the first N eval samples")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()

    fp, q = Runner(args.float_model), Runner(args.quantized_model)
    sets = realmodels.list_test_data_sets(args.eval)[: args.samples]
    results = {}
    for mode, run in (("prefill", prefill_logits), ("decode", decode_logits)):
        pairs = []
        for folder in sets:
            ids = realmodels.read_test_data_set(folder)[0]["input_ids"]
            pairs.append((run(fp, ids), run(q, ids), ids))
        results[mode] = compare(pairs)
        r = results[mode]
        print(f"{mode:8s} ppl float {r['ppl_float']:.3f}  quantized {r['ppl_quantized']:.3f} "
              f"({100 * (r['ppl_quantized'] / r['ppl_float'] - 1):+.2f}%)  KL {r['kl']:.4f}  "
              f"top-1 {r['top1']:.3f}  cosine mean {r['cosine_mean']:.5f} min {r['cosine_min']:.5f}  "
              f"({r['tokens']} positions, {len(sets)} samples)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(math.isfinite(r["kl"]) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
