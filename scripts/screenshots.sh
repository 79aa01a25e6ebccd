#!/usr/bin/env bash
# Renders the demo for real (Xvfb, Mesa's software Vulkan) and saves a screenshot of each screen on the way
# through the scripted story into docs/screenshots/. Needs Debian's xvfb, xauth and mesa-vulkan-drivers.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots}"
mkdir -p "$out"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
cargo build --example demo
binary="${CARGO_TARGET_DIR:-target}/debug/examples/demo"
BEVY_ASSET_ROOT="$PWD" RUST_LOG="${RUST_LOG:-warn}" WGPU_BACKEND=vulkan \
    xvfb-run -a -s "-screen 0 1280x720x24" "$binary" --screenshots "$out" --data-dir "$data"
ls -l "$out"
