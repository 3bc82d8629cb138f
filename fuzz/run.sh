#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60) and print executions and findings.
#   bash fuzz/run.sh [SECONDS]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain here is stable, so nightly
# flags are enabled with RUSTC_BOOTSTRAP=1, as the Rust project's own CI does for such tools.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  if cargo fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
    result="no crash"
  else
    result="FOUND A CRASH (see fuzz/artifacts/$target)"
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
  echo "$target: ${secs}s, ${execs:-?} executions, $result"
  rm -f "$log"
done
