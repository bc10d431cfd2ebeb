#!/usr/bin/env bash
# tools/test.sh — set up whatever is missing, then run sqopt's whole test suite.
#
# This is the README's test command and exactly what CI runs (.ci/run):
#   1. tools/setup.sh: libprotobuf-c-dev, the Python venv (.venv) for onnxruntime cross-checks,
#      the ONNX backend node-test data (third_party_data/onnx-node-tests).
#   2. builds the real models the tests use (MiniLM, SmolLM2) into build/real/ unless present.
#   3. a one-minute fuzzing smoke of decode -> verify -> lower (tools/fuzz.sh 1 --smoke).
#   4. swift build + swift test (Swift Testing); every suite prints its own figures.
#   5. the same suite under AddressSanitizer (separate build path .build-asan; XCTest's own
#      leaks at exit are not ours, so leak detection is off), but the real-model layer-wise
#      suite. SQOPT_SKIP_ASAN=1 skips it.
# Usage: tools/test.sh [--filter REGEX] (extra arguments go to `swift test`)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash tools/setup.sh
PY="$REPO/.venv/bin/python"

if [ ! -f build/real/minilm/model.onnx ]; then
    echo "==> building MiniLM (tools/build_minilm.py)"
    "$PY" tools/build_minilm.py
fi
if [ ! -f build/real/smollm2/model.onnx ]; then
    echo "==> building SmolLM2-135M (tools/build_smollm2.py)"
    "$PY" tools/build_smollm2.py
fi
if [ ! -d build/real/smollm2/calib ] || [ ! -d build/real/minilm/calib ]; then
    echo "==> writing calibration and held-out data (tools/make_eval_data.py)"
    "$PY" tools/make_eval_data.py
fi

export SQOPT_PYTHON="$PY"
echo "==> fuzzing smoke (tools/fuzz.sh 1 --smoke)"
# Fuzzing is random: a crash it finds is reported loudly and saved in build/fuzz-crashes/, but
# does not fail the suite (the deterministic replay of Tests/Regressions in swift test does).
if ! bash tools/fuzz.sh 1 --smoke; then
    echo "WARNING: the fuzzing smoke found a crash (build/fuzz-crashes/): fix it and add it to Tests/Regressions/" >&2
fi
echo "==> swift build"
swift build --build-tests --quiet
echo "==> swift test"
swift test --skip-build "$@"
if [ "${SQOPT_SKIP_ASAN:-0}" != "1" ]; then
    echo "==> swift test --sanitize=address"
    swift build --build-tests --quiet --sanitize=address --build-path .build-asan
    # The real-model layer-wise suite is CLI + onnxruntime time (minutes under ASan); the int8
    # lowering it checks runs under ASan in Int8LoweringTests and OnnxruntimeTargetTests.
    ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --sanitize=address --build-path .build-asan \
        --skip RealModelLayerwiseTests "$@"
fi
