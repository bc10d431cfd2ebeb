#!/usr/bin/env bash
# tools/quickstart.sh — the README's first command: set up, build, and run SmoothQuant W8A8 on a
# model shipped in models/, then compare the int8 model against the float one.
#   1. tools/setup.sh (libprotobuf-c-dev; the Python venv used by the cross-checks)
#   2. swift build -c release
#   3. sqopt --passes calibrate,smooth,quantize --calib models/tiny-llama models/tiny-llama/model.onnx -o OUT
#   4. sqopt verify (float vs int8 on a held sample) and, when the venv is there, onnxruntime runs OUT.
# Usage: tools/quickstart.sh [MODEL_DIR] (default models/tiny-llama)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
MODEL_DIR="${1:-models/tiny-llama}"

bash tools/setup.sh
echo "==> swift build -c release"
swift build -c release --quiet --product sqopt
SQOPT="$(swift build -c release --show-bin-path)/sqopt"
OUT="build/quickstart/$(basename "$MODEL_DIR").int8.onnx"
mkdir -p "$(dirname "$OUT")"

set -x
"$SQOPT" --passes calibrate,smooth,quantize --calib "$MODEL_DIR" "$MODEL_DIR/model.onnx" -o "$OUT" --force
"$SQOPT" verify "$MODEL_DIR/model.onnx" "$OUT" --data "$MODEL_DIR/test_data_set_0"
set +x
if [ -x .venv/bin/python ]; then
    .venv/bin/python - "$OUT" "$MODEL_DIR/test_data_set_0" <<'PY'
import sys, glob, onnx, onnxruntime as ort
from onnx import numpy_helper
model, data = sys.argv[1], sys.argv[2]
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
names = [i.name for i in sess.get_inputs()]
feeds = {n: numpy_helper.to_array(onnx.load_tensor(f"{data}/input_{k}.pb")) for k, n in enumerate(names)}
outs = sess.run(None, feeds)
print(f"onnxruntime {ort.__version__} runs {model}: outputs " + ", ".join(f"{o.name}{list(v.shape)}" for o, v in zip(sess.get_outputs(), outs)))
PY
fi
