#!/usr/bin/env bash
# tools/fuzz.sh — build the libFuzzer target `sqopt-fuzz` and fuzz decode -> verify -> lower.
#
# Usage: tools/fuzz.sh MINUTES [--smoke] [--no-asan] [--jobs N]
#   MINUTES    how long to fuzz (fractions allowed: 0.5)
#   --smoke    the test-suite mode: a fresh corpus from the seeds only (nothing carried over
#              between runs, so the result depends only on the tree), quiet output.
#              `tools/fuzz.sh 1 --smoke` takes about 60 s of fuzzing plus the build.
#   --no-asan  libFuzzer without AddressSanitizer (about 4x more executions per second)
#   --jobs N   parallel fuzzing processes (default 1: the machine is shared)
# Runs libFuzzer in fork mode: crashes are saved and fuzzing continues, so all are reported.
# Exit status: 0 no crash; 1 a crash, hang or sanitizer report (the input is saved in
# build/fuzz-crashes/ and replayable with `swift run sqopt-fuzz FILE`); 2 usage/build failure.
#
# Seeds: models/*/model.onnx, every 5th ONNX backend node-test model
# (third_party_data/onnx-node-tests, made by tools/setup.sh; else the onnx wheel in .venv),
# and Tests/Regressions/*. The corpus lives in build/fuzz-corpus (git-ignored).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

usage() { sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
MINUTES="$1"; shift
SMOKE=0; ASAN=1; JOBS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --no-asan) ASAN=0 ;;
        --jobs) JOBS="${2:?--jobs needs a number}"; shift ;;
        *) usage ;;
    esac
    shift
done
SECONDS_TOTAL=$(awk -v m="$MINUTES" 'BEGIN { s = int(m * 60); if (s < 1) s = 1; print s }')

FLAGS=(-Xswiftc -DSQOPT_LIBFUZZER -Xswiftc -enable-experimental-feature -Xswiftc Extern)
if [ "$ASAN" = 1 ]; then
    BUILD_PATH=.build/fuzz-asan
    FLAGS+=(-Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)
else
    BUILD_PATH=.build/fuzz
    FLAGS+=(-Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link)
fi
echo "==> building sqopt-fuzz (libFuzzer$([ "$ASAN" = 1 ] && echo ' + ASan')) into $BUILD_PATH"
if ! swift build -c release --build-path "$BUILD_PATH" --product sqopt-fuzz "${FLAGS[@]}" 2>&1 \
        | grep -v -e "Cannot export local symbol '__asan_extra_spill_area'" -e "unhandled; explicitly declare"; then
    :
fi
FUZZER="$BUILD_PATH/release/sqopt-fuzz"
[ -x "$FUZZER" ] || { echo "fuzz.sh: build failed ($FUZZER missing)" >&2; exit 2; }

SEEDS=build/fuzz-seeds
CRASHES=build/fuzz-crashes
if [ "$SMOKE" = 1 ]; then CORPUS=build/fuzz-corpus-smoke; rm -rf "$CORPUS"; else CORPUS=build/fuzz-corpus; fi
mkdir -p "$SEEDS" "$CORPUS" "$CRASHES"
rm -f "$SEEDS"/*
for model in models/*/model.onnx; do cp "$model" "$SEEDS/$(basename "$(dirname "$model")").onnx"; done
NODE_TESTS=third_party_data/onnx-node-tests
if [ ! -d "$NODE_TESTS" ]; then
    NODE_TESTS=$(ls -d .venv/lib/python3*/site-packages/onnx/backend/test/data/node 2>/dev/null | head -1 || true)
fi
if [ -z "$NODE_TESTS" ] || [ ! -d "$NODE_TESTS" ]; then
    echo "fuzz.sh: no ONNX node-test models found; run tools/setup.sh first" >&2
    exit 2
fi
i=0
for model in "$NODE_TESTS"/*/model.onnx; do
    if [ $((i % 5)) = 0 ]; then cp "$model" "$SEEDS/$(basename "$(dirname "$model")").onnx"; fi
    i=$((i + 1))
done
if [ -d Tests/Regressions ]; then
    find Tests/Regressions -maxdepth 1 -type f ! -name '*.md' -exec cp {} "$SEEDS/" \;
fi
echo "==> fuzzing for $SECONDS_TOTAL s: $(ls "$SEEDS" | wc -l) seeds, corpus $CORPUS ($(ls "$CORPUS" | wc -l) files)"

LOG=build/fuzz-last.log
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"
# Fork mode: each job runs in a child process; a crash is saved and fuzzing goes on, so one
# known crash (say, a seed) does not hide the others. `-fork` sets how many run at once.
STAMP="$(mktemp)"
ARGS=(-fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
      -max_total_time="$SECONDS_TOTAL" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=2048
      -artifact_prefix="$CRASHES/")
"$FUZZER" "${ARGS[@]}" "$CORPUS" "$SEEDS" >"$LOG" 2>&1 || true

# Fork mode logs "#<execs>: cov: ... corp: ... crash: N" lines; the last one has the totals.
EXECS=$(grep -E '^#[0-9]+: cov' "$LOG" | tail -1 | sed -E 's/^#([0-9]+):.*/\1/')
echo "==> executions: ${EXECS:-0}; corpus: $(ls "$CORPUS" | wc -l) files, $(du -sh "$CORPUS" | cut -f1); log: $LOG"
NEW_CRASHES=$(find "$CRASHES" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$STAMP" | sort)
rm -f "$STAMP"
if [ -n "$NEW_CRASHES" ]; then
    echo "fuzz.sh: sqopt-fuzz found $(echo "$NEW_CRASHES" | wc -l) crashing input(s):" >&2
    echo "$NEW_CRASHES" | sed 's/^/  /' >&2
    grep -E 'SUMMARY|runtime failure|Fatal error' "$LOG" | sort | uniq -c | sort -rn | head -10 >&2 || true
    echo "Reproduce: swift build --product sqopt-fuzz && .build/debug/sqopt-fuzz FILE" >&2
    echo "then add the minimal input to Tests/Regressions/ (see docs/robustness.md)." >&2
    exit 1
fi
echo "==> no crash"
