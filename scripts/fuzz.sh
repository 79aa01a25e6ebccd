#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz with libFuzzer) for a bounded time each; called by
# scripts/extras.sh. This machine has only stable Rust: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
# Usage: scripts/fuzz.sh [seconds per target, default 20] [target ...]. A crash fails the script; libFuzzer
# leaves the input in fuzz/artifacts/<target>/ (turn each into a unit test of the parser before fixing it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(dta1 retry_after request_head amazon_json instant_access signup_return assets plugin_files)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    # The committed seeds stay as they are: libFuzzer grows a copy.
    corpus="$(mktemp -d)"
    cp -r "fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
    log="$(mktemp)"
    # No sanitizer: the protocol crate has no unsafe code, and libFuzzer's coverage guidance works without one.
    if ! cargo fuzz run --sanitizer none --fuzz-dir fuzz "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $target failed" >&2
        exit 1
    fi
    runs="$(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    echo "fuzz $target: $runs executions in ${seconds} s, no failure"
    rm -rf "$log" "$corpus"
done
