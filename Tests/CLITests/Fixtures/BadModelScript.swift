/// The Python (onnx.helper + numpy) generator of the adversarial models, kept as Swift source
/// so the test target has no unhandled resource files. RobustnessSupport writes it to a
/// temporary file and runs it with $SQOPT_PYTHON: `make_bad_models.py OUTDIR [--big-mb N]`.
enum BadModelScript {
    static let source = #"""
"""Writes the adversarial ONNX models the robustness tests feed to `sqopt`.

Usage: make_bad_models.py OUTDIR [--big-mb N]  (source: Tests/CLITests/Fixtures/BadModelScript.swift)

Run at test time (RobustnessSupport.swift writes this text out and runs $SQOPT_PYTHON); nothing
here is committed as a blob. Every file is built with onnx.helper but *without* onnx's
checker, because most of them are invalid on purpose. Each case is one function; `CASES`
maps the file name to it. The Swift tests know, per file, which error they expect.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT


def model(nodes, inputs, outputs, initializers=(), opset=17, name="bad"):
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="sqopt-robustness")
    m.ir_version = 8
    return m


def raw_tensor(name, dtype, dims, data):
    """A TensorProto with raw_data as given, unchecked (make_tensor refuses size mismatches)."""
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = data
    return t


def vi(name, shape, dtype=FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def valid():
    w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
             helper.make_node("Relu", ["y"], ["z"], name="relu")]
    return model(nodes, [vi("x", [2, 4])], [vi("z", [2, 4])], [w])


def undefined_input():
    nodes = [helper.make_node("Relu", ["ghost"], ["z"], name="uses_ghost")]
    return model(nodes, [vi("x", [2])], [vi("z", [2])])


def cycle():
    nodes = [helper.make_node("Add", ["x", "b_out"], ["a_out"], name="node_a"),
             helper.make_node("Relu", ["a_out"], ["b_out"], name="node_b")]
    return model(nodes, [vi("x", [2])], [vi("b_out", [2])])


def raw_data_mismatch():
    w = raw_tensor("w_bad", FLOAT, [4, 4], b"\x00" * 10)
    nodes = [helper.make_node("Add", ["x", "w_bad"], ["z"], name="add")]
    return model(nodes, [vi("x", [4, 4])], [vi("z", [4, 4])], [w])


def dims_overflow():
    # 2^62 * 2^62 elements: the product overflows Int64 before the byte count is even formed.
    w = raw_tensor("w_overflow", FLOAT, [1 << 62, 1 << 62], b"\x00" * 4)
    nodes = [helper.make_node("Add", ["x", "w_overflow"], ["z"], name="add")]
    return model(nodes, [vi("x", [1])], [vi("z", [1])], [w])


def allocation_bomb():
    # 2^20 x 2^20 floats = 4 TiB: no overflow, far more than memory. No data follows; a decoder
    # that allocates from dims before checking would try to allocate 4 TiB.
    w = raw_tensor("w_bomb", FLOAT, [1 << 20, 1 << 20], b"")
    nodes = [helper.make_node("Add", ["x", "w_bomb"], ["z"], name="add")]
    return model(nodes, [vi("x", [1])], [vi("z", [1])], [w])


def negative_dim():
    w = raw_tensor("w_negative", FLOAT, [-3, 4], b"\x00" * 48)
    nodes = [helper.make_node("Add", ["x", "w_negative"], ["z"], name="add")]
    return model(nodes, [vi("x", [1])], [vi("z", [1])], [w])


def unknown_dtype():
    w = raw_tensor("w_dtype", FLOAT, [2], b"\x00" * 8)
    w.data_type = 99
    nodes = [helper.make_node("Add", ["x", "w_dtype"], ["z"], name="add")]
    return model(nodes, [vi("x", [2])], [vi("z", [2])], [w])


def deep_graph(count=100_000):
    names = ["x"] + [f"v{i}" for i in range(count)]
    nodes = [helper.make_node("Relu", [names[i]], [names[i + 1]], name=f"relu{i}") for i in range(count)]
    return model(nodes, [vi("x", [2])], [vi(names[-1], [2])])


def deep_graph_reversed(count=20_000):
    # The same chain stored last node first: a topological sort must not recurse per node.
    m = deep_graph(count)
    reversed_nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(reversed_nodes)
    return m


def nested_subgraphs(depth=30):
    # If -> then_branch -> If -> ... 30 levels (about 90 nested messages; Python protobuf stops at 100).
    # Only then_branch nests (sharing one graph in both branches would double it per level).
    def leaf(name):
        return helper.make_graph([helper.make_node("Identity", ["x"], [name], name=f"leaf_{name}")], f"g_{name}", [], [vi(name, [1])])
    inner = leaf("r0")
    for level in range(1, depth):
        node = helper.make_node("If", ["cond"], [f"r{level}"], name=f"if{level}", then_branch=inner, else_branch=leaf(f"e{level}"))
        inner = helper.make_graph([node], f"g{level}", [], [vi(f"r{level}", [1])])
    top = helper.make_node("If", ["cond"], ["z"], name="top", then_branch=inner, else_branch=leaf("e_top"))
    return model([top], [vi("cond", [], TensorProto.BOOL), vi("x", [1])], [vi("z", [1])])


def huge_attribute_list(count=200_000):
    node = helper.make_node("Relu", ["x"], ["z"], name="many_attributes")
    node.attribute.extend(helper.make_attribute(f"a{i}", i) for i in range(count))
    return model([node], [vi("x", [2])], [vi("z", [2])])


def huge_attribute_ints(count=5_000_000):
    node = helper.make_node("Transpose", ["x"], ["z"], name="huge_perm", perm=list(range(count)))
    return model([node], [vi("x", [2, 2])], [vi("z", [2, 2])])


def string_tensor_at_run():
    s = helper.make_tensor("words", TensorProto.STRING, [2], vals=[b"ab", b"cd"])
    nodes = [helper.make_node("Add", ["x", "words"], ["z"], name="add_strings")]
    return model(nodes, [vi("x", [2])], [vi("z", [2])], [s])


def unknown_op_at_run():
    nodes = [helper.make_node("Frobnicate", ["x"], ["z"], name="frob", domain="com.example")]
    m = model(nodes, [vi("x", [2])], [vi("z", [2])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    return m


def external(location, offset=None, length=None, name="w_ext", count=4):
    w = TensorProto()
    w.name = name
    w.data_type = FLOAT
    w.dims.extend([count])
    w.data_location = TensorProto.EXTERNAL
    entries = [("location", location)]
    if offset is not None:
        entries.append(("offset", str(offset)))
    if length is not None:
        entries.append(("length", str(length)))
    for key, value in entries:
        e = w.external_data.add()
        e.key, e.value = key, value
    nodes = [helper.make_node("Add", ["x", name], ["z"], name="add")]
    return model(nodes, [vi("x", [count])], [vi("z", [count])], [w])


def write_external_cases(out):
    """Each external case lives in its own folder next to weights.bin (16 bytes)."""
    secret_dir = os.path.join(out, "outside")
    os.makedirs(secret_dir, exist_ok=True)
    secret = os.path.join(secret_dir, "secret.bin")
    with open(secret, "wb") as f:
        f.write(b"\x01" * 16)
    cases = {
        "ext_ok": external("weights.bin"),
        "ext_absolute": external(secret),
        "ext_dotdot": external("../outside/secret.bin"),
        "ext_symlink": external("link.bin"),
        "ext_missing": external("missing.bin"),
        "ext_offset_beyond": external("weights.bin", offset=64, length=16),
        "ext_length_beyond": external("weights.bin", offset=8, length=16),
        "ext_bad_offset": external("weights.bin", offset="-8"),
    }
    for folder, m in cases.items():
        d = os.path.join(out, folder)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "weights.bin"), "wb") as f:
            f.write(np.arange(4, dtype=np.float32).tobytes())
        if folder == "ext_symlink":
            link = os.path.join(d, "link.bin")
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(secret, link)
        save(m, os.path.join(d, "model.onnx"))


def big_model(megabytes):
    """One MatMul with a `megabytes` MB float weight: slow enough to write to kill mid-way."""
    side = int((megabytes * (1 << 20) / 4) ** 0.5)
    w = numpy_helper.from_array(np.full((side, side), 0.5, dtype=np.float32), "w_big")
    nodes = [helper.make_node("MatMul", ["x", "w_big"], ["z"], name="mm")]
    return model(nodes, [vi("x", [1, side])], [vi("z", [1, side])], [w])


def save(m, path):
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


CASES = {
    "valid.onnx": valid,
    "undefined_input.onnx": undefined_input,
    "cycle.onnx": cycle,
    "raw_data_mismatch.onnx": raw_data_mismatch,
    "dims_overflow.onnx": dims_overflow,
    "allocation_bomb.onnx": allocation_bomb,
    "negative_dim.onnx": negative_dim,
    "unknown_dtype.onnx": unknown_dtype,
    "deep_graph.onnx": deep_graph,
    "deep_graph_reversed.onnx": deep_graph_reversed,
    "nested_subgraphs.onnx": nested_subgraphs,
    "huge_attribute_list.onnx": huge_attribute_list,
    "huge_attribute_ints.onnx": huge_attribute_ints,
    "string_tensor_at_run.onnx": string_tensor_at_run,
    "unknown_op_at_run.onnx": unknown_op_at_run,
}


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_bad_models.py OUTDIR [--big-mb N]")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if "--big-mb" in sys.argv:
        megabytes = int(sys.argv[sys.argv.index("--big-mb") + 1])
        save(big_model(megabytes), os.path.join(out, "big.onnx"))
        return
    for name, build in CASES.items():
        save(build(), os.path.join(out, name))
    # Sample input for `sqopt run` on the run-time cases (x: float [2]).
    data = os.path.join(out, "run_data")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(np.ones(2, dtype=np.float32), "x").SerializeToString())
    write_external_cases(out)


if __name__ == "__main__":
    main()
"""#
}
