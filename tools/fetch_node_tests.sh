#!/usr/bin/env bash
# tools/fetch_node_tests.sh — make the ONNX backend node tests available to sqopt's tests.
#
# Copies onnx/backend/test/data/node from the venv's onnx 1.22.0 wheel (the last release that
# ships it) to $REPO/third_party_data/onnx-node-tests (git-ignored). Each test folder holds
# model.onnx and test_data_set_0/{input,output}_N.pb; onnx's own runner compares with
# rtol 1e-3, atol 1e-7. A copy (not a symlink) keeps the data when the venv is rebuilt.
#
# Idempotent: does nothing when the copy exists and matches the installed onnx version.
# Usage: tools/fetch_node_tests.sh   (uses .venv from tools/setup.sh, or $SQOPT_PYTHON)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${SQOPT_PYTHON:-$REPO/.venv/bin/python}"
DEST="$REPO/third_party_data/onnx-node-tests"
STAMP="$DEST/.sqopt-onnx-version"
EXPECTED_VERSION="1.22.0"
EXPECTED_COUNT=1765

fail() { printf 'fetch_node_tests.sh: error: %s\n' "$*" >&2; exit 1; }

[ -x "$PY" ] || fail "$PY not found; run tools/setup.sh first"

# Locate the data without importing onnx (its import is slow and not needed here).
read -r ONNX_VERSION ONNX_DIR < <("$PY" - <<'EOF'
import importlib.metadata
import importlib.util
spec = importlib.util.find_spec("onnx")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit("onnx is not installed")
print(importlib.metadata.version("onnx"), list(spec.submodule_search_locations)[0])
EOF
) || fail "cannot locate the onnx package with $PY"

[ "$ONNX_VERSION" = "$EXPECTED_VERSION" ] \
    || fail "onnx $ONNX_VERSION is installed; the node test data needs onnx==$EXPECTED_VERSION (run tools/setup.sh)"
SOURCE="$ONNX_DIR/backend/test/data/node"
[ -d "$SOURCE" ] || fail "$SOURCE does not exist (onnx wheel without test data?)"

count_tests() { find "$1" -mindepth 1 -maxdepth 1 -type d | wc -l; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$ONNX_VERSION" ]; then
    echo "==> node tests up to date: $DEST"
else
    echo "==> copying onnx $ONNX_VERSION node tests to $DEST"
    mkdir -p "$(dirname "$DEST")"
    staging="$(mktemp -d "$(dirname "$DEST")/.onnx-node-tests.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    chmod 755 "$staging"
    cp -R "$SOURCE/." "$staging/"
    printf '%s\n' "$ONNX_VERSION" > "$staging/.sqopt-onnx-version"
    rm -rf "$DEST"
    mv "$staging" "$DEST"
    trap - EXIT
fi

COUNT="$(count_tests "$DEST")"
echo "==> $COUNT node test folders in $DEST"
[ "$COUNT" -eq "$EXPECTED_COUNT" ] \
    || fail "expected $EXPECTED_COUNT test folders, found $COUNT; delete $DEST and re-run"
