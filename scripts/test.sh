#!/usr/bin/env bash
# The test command (README.md, "Set up and run"): installs what a fresh Debian machine lacks, then builds every
# target once with one feature set and runs every test. Tests start what they need themselves (the sandbox,
# the backend, a throwaway PostgreSQL server, headless Chromium) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
# Login, sign-up and reward pages are tested in a real headless browser.
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
# The backend's tests start their own PostgreSQL server (crates/test-postgres) from Debian's binaries.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || [[ -n "${PG_BIN:-}" ]] || need+=(postgresql)
if ((${#need[@]})); then
    sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || { echo "missing: ${need[*]} (apt-get install them as root)" >&2; exit 1; }
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || { echo "missing: ${need[*]} (install them; this script knows apt only)" >&2; exit 1; }
    echo "installing ${need[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (Rust 1.95+, https://rustup.rs)" >&2; exit 1; }

# One feature set for everything: the demo's dev-dependencies already bring winit into Bevy, so the plugin's
# optional `winit` feature adds no second Bevy build. A plain `cargo test` (no target selection) builds the
# examples as programs (tests/demo.rs runs that demo binary) and runs the doc tests; `--benches --no-run`
# then only compiles and links the two benchmarks against the same artifacts.
features=(--workspace --features bevy_amazon_rewards/winit)
cargo test "${features[@]}" --no-fail-fast "$@"
cargo test "${features[@]}" --benches --no-run
