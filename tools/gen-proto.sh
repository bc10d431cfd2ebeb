#!/usr/bin/env bash
# Regenerates the protobuf-c code of the ONNXProto target from Sources/ONNXProto/onnx.proto.
#
# Output (committed, unmodified generator output; the build never runs protoc-c):
#   Sources/ONNXProto/onnx.pb-c.c
#   Sources/ONNXProto/include/onnx.pb-c.h
#
# Needs protoc-c (Debian: apt-get install protobuf-c-compiler). Run from anywhere.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
proto_dir="$repo_root/Sources/ONNXProto"

if ! command -v protoc-c >/dev/null 2>&1; then
    echo "gen-proto.sh: protoc-c not found; install it with: apt-get install protobuf-c-compiler" >&2
    exit 1
fi

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

protoc-c --proto_path="$proto_dir" --c_out="$work_dir" "$proto_dir/onnx.proto"

mkdir -p "$proto_dir/include"
mv "$work_dir/onnx.pb-c.c" "$proto_dir/onnx.pb-c.c"
mv "$work_dir/onnx.pb-c.h" "$proto_dir/include/onnx.pb-c.h"
echo "gen-proto.sh: wrote Sources/ONNXProto/onnx.pb-c.c and Sources/ONNXProto/include/onnx.pb-c.h ($(protoc-c --version | head -n 1))"
