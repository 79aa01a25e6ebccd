#!/usr/bin/env bash
# Slow, bounded checks that .ci/run runs after the README's test command, with a budget of their own (README,
# "Development notes"): rendering the demo's screens for real under Xvfb (reusing the test command's build),
# schema-driven fuzzing of the backend's and the sandbox's HTTP APIs with Schemathesis (tests/openapi.rs, the
# same build), and fuzzing every parser of outside input for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# The demo's screenshots render in a real window: Xvfb and Mesa's software Vulkan (llvmpipe).
command -v xvfb-run >/dev/null || need+=(xvfb xauth)
[[ -e /usr/share/vulkan/icd.d/lvp_icd.json || -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]] || need+=(mesa-vulkan-drivers)
# Schemathesis is a Python program, installed (pinned) into a virtualenv of its own.
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
    sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

started=$SECONDS
bash scripts/screenshots.sh "$(mktemp -d)"
echo "screenshots: $((SECONDS - started)) s"

# Schemathesis against the backend (owning the inventory, and serving the feed) and the sandbox, with valid
# credentials from its hooks (scripts/schemathesis_hooks.py); the requests tried per operation are printed.
started=$SECONDS
venv="${SCHEMATHESIS_VENV:-${HOME:-/root}/.cache/bevy_amazon_rewards/schemathesis-4.32.5}"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
SCHEMATHESIS="$venv/bin/schemathesis" cargo test --workspace --features bevy_amazon_rewards/winit --test openapi \
    -- --ignored --nocapture
echo "schemathesis: $((SECONDS - started)) s"

# Every parser of outside input, fuzzed for a bounded time each (longer runs: scripts/fuzz.sh 600).
started=$SECONDS
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
echo "fuzzing: $((SECONDS - started)) s"
