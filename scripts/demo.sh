#!/usr/bin/env bash
# The main job: build, start the server in sandbox mode, play a recorded call through it.
# Usage: scripts/demo.sh [assets/calls/NAME.wav]   (default: the barge-in call)
set -euo pipefail
cd "$(dirname "$0")/.."
call=${1:-assets/calls/barge_in.wav}
cargo build --release --quiet
bin=target/release/switchboard
db=$(mktemp -d)/demo.db
log=$(mktemp)
# Sandbox mode means no provider key and no admin token: drop them from the environment.
unset_keys=()
for k in $(env | grep -o '^[A-Z0-9_]*_API_KEY' || true); do unset_keys+=(-u "$k"); done
# …and no admin token (either would put the server in production mode).
env "${unset_keys[@]}" -u SWITCHBOARD_ADMIN_TOKEN -u SWITCHBOARD_CONFIG SWITCHBOARD_LOG_FORMAT=text \
  "$bin" serve --listen 127.0.0.1:0 --database "sqlite:$db" >"$log.out" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$log.out" 2>/dev/null && break
  sleep 0.1
done
url=$(grep -o 'http://[0-9.:]*' "$log.out" | head -1)
[ -n "$url" ] || { echo "server did not start:"; cat "$log"; exit 1; }
echo "server: $url (log: $log)"
grep -m1 "sandbox mode" "$log" || true
echo
"$bin" call "$call" --server "$url" --save-audio "${log}.agent.wav"
echo
echo "agent audio saved to ${log}.agent.wav"
# On a terminal, keep the server up for the web pages (talk, console) until Enter.
if [ -t 0 ]; then
  echo
  echo "web pages: $url/ (talk: $url/talk, console: $url/console); press Enter to stop the server"
  read -r _
fi
