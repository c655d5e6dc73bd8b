// The talk page: one call to an agent from this browser, through the JS client.
// `?agent=ID&autostart=1` starts without a click; `?mic=raw` turns the microphone's echo
// cancellation, noise suppression and gain control off (a recording as the microphone).
// `window.result` mirrors the call's state for tests and kiosks.
import { Call, Playback, mintClientToken, startMicrophone, totalMicros, formatMicros } from '/assets/client/index.js';
import { api, credential, isOrgKey, masked, el } from '/assets/session.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const result = {
  state: 'idle', done: false, error: null, endReason: null, sessionId: null,
  finals: [], agentText: [], turnsDone: 0, bargeIns: 0, clears: 0, droppedOnClear: 0,
  framesSent: 0, framesReceived: 0, framesPlayed: 0, peakLevel: 0, contextState: null,
  usage: [], totalMicros: null,
};
window.result = result;

let call = null;
let mic = null;
let playback = null;
let meter = null;

function status(text) { $('status').textContent = text; }

function line(cls, text) {
  const li = el('li', { class: cls }, text);
  $('lines').append(li);
  li.scrollIntoView({ block: 'nearest' });
  return li;
}

/** Idle: Start on. Connecting: both off. Live: Stop on. */
function setBusy(busy, live = false) {
  $('start').disabled = busy;
  $('agent').disabled = busy;
  $('stop').disabled = !live;
}

function showUsage(records) {
  const body = $('usage').tBodies[0];
  body.replaceChildren(...records.map((r) => el('tr', { 'data-billed-to': r.billed_to },
    el('td', {}, r.line), el('td', {}, r.provider), el('td', {}, r.model),
    el('td', {}, `${r.quantity} ${r.unit}`), el('td', {}, r.billed_to), el('td', {}, formatMicros(r.amount_micros)))));
  result.totalMicros = totalMicros(records);
  $('total').textContent = formatMicros(result.totalMicros);
  $('usage-box').hidden = false;
}

function wire(c) {
  let interim = null;
  const turns = new Map();
  c.on('audio', (pcm) => { result.framesReceived++; playback.push(pcm); });
  c.on('transcript', (ev) => {
    if (!interim) interim = line('caller interim', '');
    interim.textContent = ev.text;
    if (ev.is_final) {
      interim.classList.remove('interim');
      result.finals.push(ev.text);
      interim = null;
    }
  });
  c.on('agent', (ev) => {
    if (!turns.has(ev.turn)) turns.set(ev.turn, line('agent', ''));
    const li = turns.get(ev.turn);
    li.textContent = `${li.textContent}${ev.text}`;
    result.agentText.push(ev.text);
  });
  c.on('agent_done', () => { result.turnsDone++; });
  c.on('barge_in', (ev) => {
    result.bargeIns++;
    // What was played stays; the rest of the reply, never heard, is struck through.
    const li = turns.get(ev.turn);
    if (li) {
      const full = li.textContent;
      const kept = ev.kept_text && full.startsWith(ev.kept_text) ? ev.kept_text : '';
      li.replaceChildren(el('span', {}, kept), el('del', { class: 'unplayed' }, full.slice(kept.length)));
      li.classList.add('cut');
    }
    line('barge', `Barge-in: the agent stopped after ${(ev.played_ms / 1000).toFixed(1)} s`);
  });
  c.on('clear', () => {
    result.clears++;
    result.droppedOnClear += playback.clear();
  });
  c.on('tool_call', (ev) => line('tool', `Tool ${ev.name}(${ev.arguments})`));
  c.on('tool_result', (ev) => line('tool', `Tool ${ev.name} → ${ev.result}`));
  c.on('error', (ev) => line('error', `${ev.code}: ${ev.message}`));
  c.on('usage', (ev) => { result.usage = ev.records; showUsage(ev.records); });
  c.on('end', (ev) => line('end', `Call ended: ${ev.reason}`));
}

async function start() {
  const agent = $('agent').value.trim() || 'default';
  setBusy(true);
  $('lines').replaceChildren();
  $('usage-box').hidden = true;
  Object.assign(result, { state: 'connecting', done: false, error: null, endReason: null, finals: [], agentText: [], turnsDone: 0,
    bargeIns: 0, clears: 0, droppedOnClear: 0, framesSent: 0, framesReceived: 0, framesPlayed: 0, peakLevel: 0,
    usage: [], totalMicros: null });
  status('Connecting…');
  try {
    // Created inside the click (or autostart), so the browser lets it play.
    playback = new Playback({ sampleRate: 16000 });
    await playback.context.resume();
    mic = await startMicrophone({
      processing: params.get('mic') !== 'raw',
      onFrame: (pcm) => { if (call && call.sendAudio(pcm)) result.framesSent++; },
    });
    const cred = credential();
    const token = isOrgKey(cred) ? await mintClientToken({ orgKey: cred, agentId: agent }) : undefined;
    call = await Call.connect({ agent, token });
    wire(call);
    result.sessionId = call.sessionId;
    result.state = 'live';
    setBusy(true, true);
    status(`Live: speak now (session ${call.sessionId}).`);
    meter = setInterval(() => {
      result.framesPlayed = playback.stats.played;
      result.peakLevel = Math.max(result.peakLevel, playback.level());
      result.contextState = playback.context.state;
    }, 50);
    const end = await call.ended;
    result.endReason = end.reason;
    status(`Call ended: ${end.reason}${result.totalMicros === null ? '' : `, ${formatMicros(result.totalMicros)}`}.`);
    result.state = 'ended';
  } catch (e) {
    result.error = e.code || e.name || 'error';
    result.state = 'error';
    status(`Could not start: ${e.message}`);
  } finally {
    await finish();
  }
}

async function finish() {
  if (meter) clearInterval(meter);
  meter = null;
  if (playback) {
    result.framesPlayed = playback.stats.played;
    // Let the last queued frames play out, then free the audio device (browsers cap contexts).
    const done = playback;
    setTimeout(() => done.close(), 1000);
  }
  if (mic) await mic.stop();
  mic = null;
  call = null;
  setBusy(false);
  result.done = true;
}

$('call-form').addEventListener('submit', (ev) => { ev.preventDefault(); start(); });
$('stop').addEventListener('click', () => { if (call) { status('Hanging up…'); call.stop(); } });

const cred = credential();
if (!cred) $('who').textContent = 'Not signed in: only the sandbox default agent answers.';
else if (isOrgKey(cred)) $('who').textContent = `Signed in (org key ${masked(cred)}): each call uses a single-use client token.`;
else $('who').textContent = 'Signed in with the admin token, which a browser cannot call with: sign in with an org key.';
if (isOrgKey(cred)) {
  // The org's agents as suggestions; typing any id still works.
  api('GET', '/api/agents').then((r) => {
    if (r.ok) $('agents').replaceChildren(...r.body.agents.map((a) => el('option', { value: a.id })));
  });
}
if (params.get('agent')) $('agent').value = params.get('agent');
if (params.get('autostart') === '1') start();
