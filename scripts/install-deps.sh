#!/usr/bin/env bash
# System packages Switchboard needs on a fresh Debian/Ubuntu machine.
#   cmake          builds the bundled libopus (opus crate)
#   espeak-ng sox  only to regenerate the recorded calls (scripts/make-calls.sh)
#   bc             used by scripts/make-calls.sh
#   python3 + pip, node + npm, and the official OpenAI SDKs pinned in tests/sdk: the
#                  OpenAI-compatible endpoint is tested through them (tests/openai_sdk.rs);
#                  node also runs the JS client's tests (tests/js_client.rs)
#   schemathesis   (PyPI, pinned in tests/sdk/requirements.txt) tests the OpenAPI document
#                  against the server (tests/openapi_conformance.rs)
#   openapi-typescript openapi-fetch typescript  (npm, pinned in tests/sdk) compile a typed
#                  client from the served OpenAPI document (tests/openapi_client.rs)
#   g++            builds libFuzzer for the fuzz smoke (tests/fuzz_smoke.rs)
#   chromium chromium-driver  the web pages' browser tests (tests/browser/); one source
#                  package, so their versions always match
#   firefox-esr pulseaudio pulseaudio-utils  the same tests in Firefox, whose microphone is a
#                  private PulseAudio server the test plays the recorded call into; geckodriver
#                  (not packaged by Debian) comes from crates.io, pinned below
#   haproxy        the load balancer in front of two nodes in tests/nodes.rs (deploy/haproxy.cfg)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in cmake espeak-ng sox bc g++ haproxy; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v python3 >/dev/null || need+=(python3 python3-pip)
command -v npm >/dev/null || need+=(nodejs npm)
command -v chromedriver >/dev/null || need+=(chromium chromium-driver)
for p in firefox-esr pulseaudio pulseaudio-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
else
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}"
fi
echo "OpenAI SDKs and schemathesis (tests/sdk)"
python3 -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/sdk/requirements.txt
(cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
python3 -c "import openai" || { echo "FATAL: the OpenAI Python SDK did not install" >&2; exit 1; }
python3 -c "import schemathesis" || { echo "FATAL: schemathesis did not install" >&2; exit 1; }
[ -d tests/sdk/node_modules/openai ] || { echo "FATAL: the OpenAI Node SDK did not install" >&2; exit 1; }
for p in openapi-typescript openapi-fetch typescript; do
  [ -d "tests/sdk/node_modules/$p" ] || { echo "FATAL: $p did not install (tests/sdk)" >&2; exit 1; }
done
GECKODRIVER_VERSION=0.37.1
# Installed under a fixed root (not wherever CARGO_HOME points in this environment), and checked
# there, so "cargo install" cannot report success for a binary kept somewhere the tests don't look.
if [ -w /usr/local/bin ]; then GECKO_ROOT=/usr/local; else GECKO_ROOT="$HOME/.local"; fi
GECKO_BIN="$GECKO_ROOT/bin/geckodriver"
# The version is read into a variable, not piped to `grep -q`: under pipefail, grep quitting at the
# first match sends geckodriver SIGPIPE while it prints its licence lines, failing the check at random.
gecko_ok() {
  local version
  [ -x "$GECKO_BIN" ] && version="$("$GECKO_BIN" --version 2>/dev/null)" \
    && [[ "$version" == *"$GECKODRIVER_VERSION"* ]]
}
if ! gecko_ok; then
  echo "geckodriver $GECKODRIVER_VERSION from crates.io into $GECKO_ROOT (built once, a few minutes)"
  cargo install --locked --force --root "$GECKO_ROOT" geckodriver --version "$GECKODRIVER_VERSION"
fi
gecko_ok || {
  echo "FATAL: geckodriver $GECKODRIVER_VERSION did not install at $GECKO_BIN" >&2
  ls -l "$GECKO_BIN" >&2 || true
  exit 1
}
echo "geckodriver: $GECKO_BIN"
