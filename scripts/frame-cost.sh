#!/usr/bin/env bash
# Instructions per idle frame, counted by callgrind (repeatable where wall time is not): each setup of
# crates/frame-cost runs 2,000 and 12,000 frames, and the difference over 10,000 frames is one frame's cost,
# start-up excluded. Usage: scripts/frame-cost.sh [setup ...] (default: every setup). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p frame_cost
bin=target/release/frame_cost
setups=("$@")
((${#setups[@]})) || setups=(prerequisites one_state core login entitlements subscriptions moments all_but_moments all)
count() {
    local out; out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
    awk '/^summary:/ {print $2}' "$out"; rm -f "$out"
}
base=""
for setup in "${setups[@]}"; do
    short=$(count "$setup" 2000); long=$(count "$setup" 12000)
    per_frame=$(( (long - short) / 10000 ))
    [[ -z "$base" ]] && base=$per_frame
    printf '%-16s %8d instructions/frame  %.3fx\n' "$setup" "$per_frame" "$(echo "$per_frame / $base" | bc -l)"
done
