#!/usr/bin/env bash
# Slow, bounded checks that .ci/run runs after the README's test command, with a budget of their own (README,
# "Development notes"): rendering the demo's screens for real under Xvfb (reusing the test command's build), and
# fuzzing every parser of outside input for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# The demo's screenshots render in a real window: Xvfb and Mesa's software Vulkan (llvmpipe).
command -v xvfb-run >/dev/null || need+=(xvfb xauth)
[[ -e /usr/share/vulkan/icd.d/lvp_icd.json || -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]] || need+=(mesa-vulkan-drivers)
if ((${#need[@]})); then
    sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

started=$SECONDS
bash scripts/screenshots.sh "$(mktemp -d)"
echo "screenshots: $((SECONDS - started)) s"

# Every parser of outside input, fuzzed for a bounded time each (longer runs: scripts/fuzz.sh 600).
started=$SECONDS
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
echo "fuzzing: $((SECONDS - started)) s"
