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
#   g++            builds libFuzzer for the fuzz smoke (tests/fuzz_smoke.rs)
#   chromium chromium-driver  the web pages' browser tests (tests/browser.rs); one source
#                  package, so their versions always match
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in cmake espeak-ng sox bc g++; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v python3 >/dev/null || need+=(python3 python3-pip)
command -v npm >/dev/null || need+=(nodejs npm)
command -v chromedriver >/dev/null || need+=(chromium chromium-driver)
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
