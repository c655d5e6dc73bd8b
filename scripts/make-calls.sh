#!/usr/bin/env bash
# Regenerates the recorded calls in assets/calls/ from text, with espeak-ng and sox.
# Each call is a 16 kHz PCM16 mono WAV plus a JSON sidecar that says where each caller
# utterance starts and ends and what it says (the STT simulator's catalog is built from both).
# Usage: scripts/make-calls.sh [NAME...]  (all calls, or only those named; needs espeak-ng, sox)
set -euo pipefail
cd "$(dirname "$0")/.."
out=assets/calls
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v espeak-ng >/dev/null || { echo "espeak-ng missing: apt-get install espeak-ng" >&2; exit 1; }
command -v sox >/dev/null || { echo "sox missing: apt-get install sox" >&2; exit 1; }
mkdir -p "$out"

# make_call NAME DESCRIPTION LEAD_S  "TEXT|GAP_AFTER_S" ...
only=("$@")
make_call() {
  local name=$1 desc=$2 lead=$3; shift 3
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " == *" $name "* ]]; then return; fi
  local parts=() t=$lead json="" i=0
  sox -n -r 16000 -c 1 -b 16 "$tmp/lead.wav" trim 0 "$lead"
  parts+=("$tmp/lead.wav")
  for spec in "$@"; do
    local text=${spec%|*} gap=${spec##*|}
    espeak-ng -v en-us -s 150 -w "$tmp/raw$i.wav" "$text"
    # trim espeak's own leading/trailing silence so the sidecar times are exact
    sox "$tmp/raw$i.wav" -r 16000 -c 1 -b 16 "$tmp/u$i.wav" silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse
    local d; d=$(soxi -D "$tmp/u$i.wav")
    local end; end=$(echo "$t + $d" | bc -l)
    [ -n "$json" ] && json+=","
    json+=$(printf '\n    {"start_s": %.3f, "end_s": %.3f, "text": "%s"}' "$t" "$end" "$text")
    sox -n -r 16000 -c 1 -b 16 "$tmp/gap$i.wav" trim 0 "$gap"
    parts+=("$tmp/u$i.wav" "$tmp/gap$i.wav")
    t=$(echo "$end + $gap" | bc -l)
    i=$((i + 1))
  done
  sox "${parts[@]}" "$out/$name.wav"
  printf '{\n  "name": "%s",\n  "description": "%s",\n  "sample_rate": 16000,\n  "duration_s": %.3f,\n  "utterances": [%s\n  ]\n}\n' \
    "$name" "$desc" "$(soxi -D "$out/$name.wav")" "$json" > "$out/$name.json"
  echo "made $out/$name.wav ($(soxi -D "$out/$name.wav") s, $i utterances)"
}

make_call simple "One question, one answer." 0.6 \
  "Hello, what are your opening hours?|7.5"
make_call multi_turn "Three turns: book a table, give the time, say goodbye." 0.6 \
  "Hi, I would like to book a table for two.|6.5" \
  "Tomorrow at seven in the evening, please.|7.5" \
  "Thank you, goodbye.|5"
make_call barge_in "The caller asks for a long story and talks over the agent." 0.6 \
  "Can you tell me a long story about the sea?|4.5" \
  "Stop, stop, what are your opening hours?|7.5"
make_call tools "Agent tools: a webhook answers the order question, then the caller asks to end the call." 0.6 \
  "What is the order status of order 4 2 1 7?|9" \
  "Please end call now.|6"
make_call tools_line "Agent tools on the line: press keys, then transfer the caller." 0.6 \
  "Please send dtmf 1 2 3 4.|7" \
  "Now transfer call to a person.|6"
