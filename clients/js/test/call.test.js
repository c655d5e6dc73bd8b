// The client against a real `switchboard serve`, started by tests/js_client.rs, which sets:
//   SWITCHBOARD_URL        a sandbox server
//   SWITCHBOARD_PROD_URL   a production server, with SWITCHBOARD_ORG_KEY and its SWITCHBOARD_AGENT
//   SWITCHBOARD_CALLS      the recorded calls (assets/calls)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Call, SwitchboardError, mintClientToken, totalMicros, formatMicros } from '../src/index.js';
import { readWav } from './wav.js';

function env(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this through \`cargo test --test js_client\``);
  return v;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Play `pcm` (16 kHz) in real time as 20 ms frames, then silence until `until()` or `maxMs`. */
async function speak(call, pcm, until, maxMs = 20000) {
  const t0 = Date.now();
  let sent = 0;
  for (let n = 0; ; n++) {
    const frame = n * 320 < pcm.length ? pcm.subarray(n * 320, (n + 1) * 320) : new Int16Array(320);
    if (frame.length === 320 && call.sendAudio(frame)) sent++;
    if (n * 320 >= pcm.length && until()) break;
    if (Date.now() - t0 > maxMs) break;
    const ahead = t0 + (n + 1) * 20 - Date.now();
    if (ahead > 0) await sleep(ahead);
  }
  return sent;
}

/** Events of one call, by type. */
function record(call) {
  const seen = { all: [], audio: 0 };
  call.on('*', (ev) => seen.all.push(ev));
  call.on('audio', (pcm) => { seen.audio += pcm.length; });
  seen.of = (type) => seen.all.filter((e) => e.type === type);
  return seen;
}

test('a sandbox call: caller transcript, agent reply with audio, usage and end', async () => {
  const { rate, pcm } = readWav(`${env('SWITCHBOARD_CALLS')}/simple.wav`);
  assert.equal(rate, 16000);
  const call = await Call.connect({ server: env('SWITCHBOARD_URL'), agent: 'default', callId: `js-${Date.now()}` });
  assert.match(call.sessionId, /.+/);
  const seen = record(call);
  await speak(call, pcm, () => seen.of('agent_done').length > 0);
  const result = await call.stop();
  const finals = seen.of('transcript').filter((t) => t.is_final).map((t) => t.text);
  assert.deepEqual(finals, ['Hello, what are your opening hours?']);
  const reply = seen.of('agent').map((a) => a.text).join('');
  assert.ok(reply.length > 10, `agent said: ${reply}`);
  assert.ok(seen.audio >= 16000 * 0.5, `agent audio samples: ${seen.audio}`);
  assert.equal(result.reason, 'hangup');
  assert.equal(seen.of('end').length, 1);
  const lines = new Set(result.usage.map((r) => r.line));
  for (const l of ['stt', 'llm.input', 'llm.output', 'tts']) assert.ok(lines.has(l), `usage lines: ${[...lines]}`);
  assert.ok(result.usage.every((r) => r.billed_to === 'managed'), JSON.stringify(result.usage));
  assert.ok(totalMicros(result.usage) > 0);
});

test('the barge-in recording gets barge_in and clear, in that order, mid-reply', async () => {
  const { pcm } = readWav(`${env('SWITCHBOARD_CALLS')}/barge_in.wav`);
  const call = await Call.connect({ server: env('SWITCHBOARD_URL') });
  const seen = record(call);
  let audioAtClear = -1;
  call.on('clear', () => { audioAtClear = seen.audio; });
  await speak(call, pcm, () => seen.of('agent_done').length > 0 && seen.of('barge_in').length > 0, 40000);
  await call.stop();
  const types = seen.all.map((e) => e.type);
  assert.ok(types.includes('barge_in') && types.includes('clear'), `events: ${types}`);
  assert.ok(audioAtClear > 0, 'agent audio was playing when clear came');
  assert.ok(seen.of('barge_in')[0].played_ms > 0);
});

test('an org key is exchanged for a single-use client token, never sent on the socket URL', async () => {
  const server = env('SWITCHBOARD_PROD_URL');
  const orgKey = env('SWITCHBOARD_ORG_KEY');
  const agent = env('SWITCHBOARD_AGENT');
  const { pcm } = readWav(`${env('SWITCHBOARD_CALLS')}/simple.wav`);
  const urls = [];
  class SpyWebSocket extends WebSocket {
    constructor(url) { urls.push(url); super(url); }
  }
  const call = await Call.connect({ server, orgKey, agent, WebSocket: SpyWebSocket });
  const seen = record(call);
  await speak(call, pcm, () => seen.of('agent_done').length > 0);
  const result = await call.stop();
  assert.equal(urls.length, 1);
  assert.ok(!urls[0].includes(orgKey), urls[0]);
  assert.match(urls[0], /\/v1\/client\?token=/);
  assert.ok(result.usage.length > 0 && result.usage.every((r) => r.org_id && r.org_id !== 'default'));
  assert.ok(seen.of('transcript').some((t) => t.is_final && t.text.includes('opening hours')));
});

test('refusals carry the server code: no credential on a production server, a reused token, a bad org key', async () => {
  const server = env('SWITCHBOARD_PROD_URL');
  const agent = env('SWITCHBOARD_AGENT');
  await assert.rejects(Call.connect({ server, agent }), (e) => e instanceof SwitchboardError && e.code === 'unauthenticated');
  const token = await mintClientToken({ server, orgKey: env('SWITCHBOARD_ORG_KEY'), agentId: agent });
  const first = await Call.connect({ server, agent, token });
  await first.stop();
  await assert.rejects(Call.connect({ server, agent, token }), (e) => e.code === 'token_used');
  await assert.rejects(
    mintClientToken({ server, orgKey: 'sk_not_a_key', agentId: agent }),
    (e) => e instanceof SwitchboardError && e.code === 'unauthorized',
  );
});

test('formatMicros', () => {
  assert.equal(formatMicros(1234567), '$1.234567');
  assert.equal(formatMicros(42), '$0.000042');
  assert.equal(formatMicros(-5000000), '-$5.000000');
});
