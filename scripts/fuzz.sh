#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, libFuzzer through libfuzzer-sys) for a bounded time each; called by
# scripts/extras.sh. Usage: scripts/fuzz.sh [seconds per target, default 20] [target ...]. A crash fails the
# script; libFuzzer leaves the input in fuzz/artifacts/<target>/ (turn each into a unit test of the parser
# before fixing it).
#
# The targets are built here with cargo-fuzz's own instrumentation flags (its src/project.rs) instead of
# through cargo-fuzz: nothing to install on a new machine, every target in one cargo build, stable flags only
# (no RUSTC_BOOTSTRAP), and the release profile's usual codegen units (cargo-fuzz forces one, for speed of
# the fuzzed code over speed of the build). `cargo fuzz run --sanitizer none <target>` runs the same targets.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(dta1 retry_after request_head amazon_json instant_access signup_return assets plugin_files)

triple="$(rustc -vV | sed -n 's/^host: //p')"
flags=(-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing -Cdebug-assertions)
[[ "$triple" == *-linux-* ]] && flags+=(-Cllvm-args=-sanitizer-coverage-stack-depth)
# --target keeps the flags off build scripts and proc macros, as cargo-fuzz does. No sanitizer: the protocol
# crate has no unsafe code, and libFuzzer's coverage guidance works without one.
RUSTFLAGS="${flags[*]} ${RUSTFLAGS:-}" cargo build --quiet --manifest-path fuzz/Cargo.toml --target "$triple" \
    --release --config 'profile.release.debug="line-tables-only"' --bins
bin_dir="${CARGO_TARGET_DIR:-fuzz/target}/$triple/release"

for target in "${targets[@]}"; do
    # The committed seeds stay as they are: libFuzzer grows a copy.
    corpus="$(mktemp -d)"
    cp -r "fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
    mkdir -p "fuzz/artifacts/$target"
    log="$(mktemp)"
    if ! "$bin_dir/$target" -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" -max_len=4096 \
        -print_final_stats=1 "$corpus" >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $target failed" >&2
        exit 1
    fi
    runs="$(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    echo "fuzz $target: $runs executions in ${seconds} s, no failure"
    rm -rf "$log" "$corpus"
done
