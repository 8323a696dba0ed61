#!/usr/bin/env bash
# Runs a libFuzzer target of Fuzz/ for a bounded time and fails on any crash or broken invariant.
#   scripts/fuzz.sh TARGET SECONDS      TARGET: FuzzHostName FuzzOrigin FuzzCookie FuzzSnapshot FuzzRequestPath FuzzProxyHeader FuzzRequestHead
#   scripts/fuzz.sh all SECONDS         every target, SECONDS each
#   FUZZ_UPDATE_CORPUS=1 scripts/fuzz.sh ...   also merge new interesting inputs into Fuzz/Corpus/TARGET
# The committed corpus (Fuzz/Corpus/TARGET) seeds each run and is only read unless asked. A crash
# leaves its input in Fuzz/crashes/ (reproduce: Fuzz/.build/debug/TARGET Fuzz/crashes/crash-…).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(FuzzHostName FuzzOrigin FuzzCookie FuzzSnapshot FuzzRequestPath FuzzProxyHeader FuzzRequestHead)
target="${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
seconds="${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
if [ "$target" = all ]; then list=("${TARGETS[@]}"); else list=("$target"); fi

(cd Fuzz && swift build --sanitize fuzzer)
bin="$(cd Fuzz && swift build --sanitize fuzzer --show-bin-path)"
mkdir -p Fuzz/crashes
status=0
for t in "${list[@]}"; do
  corpus="Fuzz/Corpus/$t"
  mkdir -p "$corpus"
  work="$(mktemp -d)"
  echo "== $t: ${seconds}s, seeds $(ls "$corpus" | wc -l)"
  # New inputs go to the scratch directory (first); the committed corpus is read only.
  if ! SWIFT_BACKTRACE=enable=no "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=Fuzz/crashes/ -print_final_stats=1 "$work" "$corpus" > "$work.log" 2>&1; then
    grep -v '^#' "$work.log" | tail -n 30
    echo "== $t: FAILED (input saved under Fuzz/crashes/)"
    status=1
  else
    stats=$(grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work.log" | sed 's/^stat:://; s/: */=/' | tr '\n' ' ')
    echo "== $t: ok ($stats)"
  fi
  if [ "${FUZZ_UPDATE_CORPUS:-}" = 1 ]; then
    SWIFT_BACKTRACE=enable=no "$bin/$t" -merge=1 "$corpus" "$work" > /dev/null 2>&1 || true
  fi
  rm -rf "$work" "$work.log"
done
exit $status
