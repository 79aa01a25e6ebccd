#!/usr/bin/env bash
# Renders the demo for real (Xvfb, Mesa's software Vulkan) and saves a screenshot of each screen on the way
# through the scripted story into docs/screenshots/. Needs Debian's xvfb, xauth and mesa-vulkan-drivers.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots}"
mkdir -p "$out"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
# The demo program the test command builds (same features: no second Bevy build); built the same way if missing.
binary="${CARGO_TARGET_DIR:-target}/debug/examples/demo"
[[ -x "$binary" ]] || cargo test --workspace --features bevy_amazon_rewards/winit --no-run
BEVY_ASSET_ROOT="$PWD" RUST_LOG="${RUST_LOG:-warn}" WGPU_BACKEND=vulkan \
    xvfb-run -a -s "-screen 0 1280x720x24" "$binary" --screenshots "$out" --data-dir "$data"
ls -l "$out"
