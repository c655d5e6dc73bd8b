// One call over Switchboard's client websocket (`/v1/client`, docs/client-protocol.md).
// Runs in browsers and in Node ≥ 20 (with `--experimental-websocket`, or pass `WebSocket`).

/** Server → client text events this client knows; anything else is emitted as-is too. */
export const EVENT_TYPES = Object.freeze([
  'started', 'transcript', 'agent', 'agent_done', 'barge_in', 'clear', 'mark', 'dtmf', 'tool_call', 'tool_result',
  'error', 'usage', 'end',
]);

/**
 * A single-use client token for `agentId`, minted with the org's API key. The key goes in the
 * Authorization header of one request and never into a URL; the token dies with its call.
 */
export async function mintClientToken({ server = '', orgKey, agentId, ttlSeconds = 30, fetch: f = globalThis.fetch }) {
  const resp = await f(`${server}/api/client-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${orgKey}` },
    body: JSON.stringify({ agentId, ttlSeconds }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = body.error || {};
    throw new SwitchboardError(e.code || `http_${resp.status}`, e.message || resp.statusText);
  }
  return body.token;
}

/** A refusal or failure with the server's stable code (`bad_token`, `unknown_agent`, …). */
export class SwitchboardError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'SwitchboardError';
    this.code = code;
  }
}

function wsUrl(server, token) {
  const base = server || (globalThis.location ? globalThis.location.origin : '');
  const url = new URL('/v1/client', base);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

/**
 * A live call. Create it with `Call.connect`; it resolves once the server sent `started`.
 * `ended` resolves with `{reason, usage}` when the server ends the call (or the socket closes).
 */
export class Call {
  /**
   * @param {object} opts `server` (http(s) base URL; default: this page's origin), `agent`
   *   (default `default`), `token` (a client token) or `orgKey` (an org API key, exchanged for
   *   a client token first), `callId`, `sampleRate` (16000), `WebSocket`, `fetch`.
   */
  static async connect(opts = {}) {
    const agent = opts.agent || 'default';
    let token = opts.token;
    if (!token && opts.orgKey) {
      token = await mintClientToken({ server: opts.server, orgKey: opts.orgKey, agentId: agent, fetch: opts.fetch });
    }
    const WS = opts.WebSocket || globalThis.WebSocket;
    if (!WS) throw new SwitchboardError('no_websocket', 'no WebSocket here (Node 20: --experimental-websocket)');
    const call = new Call(new WS(wsUrl(opts.server, token)), {
      agent, callId: opts.callId, sampleRate: opts.sampleRate || 16000,
    });
    await call.started;
    return call;
  }

  constructor(ws, { agent, callId, sampleRate }) {
    this.ws = ws;
    this.ws.binaryType = 'arraybuffer';
    this.sampleRate = sampleRate;
    this.sessionId = null;
    this.callSid = null;
    this.usage = [];
    this.handlers = new Map();
    this.isLive = false;
    this.started = new Promise((resolve, reject) => { this.startWaiter = { resolve, reject }; });
    this.ended = new Promise((resolve) => { this.endWaiter = resolve; });
    this.endReason = null;
    ws.addEventListener('open', () => {
      const start = { type: 'start', params: { agent }, audio: { encoding: 'pcm16', sample_rate: sampleRate } };
      if (callId) start.call_id = callId;
      ws.send(JSON.stringify(start));
    });
    ws.addEventListener('message', (ev) => this.onMessage(ev.data));
    ws.addEventListener('close', (ev) => this.onClose(ev.code, ev.reason));
    ws.addEventListener('error', () => {});
  }

  /** Subscribe to one event type (or `'*'` for every event, `'audio'` for agent PCM16 frames). Returns an unsubscribe function. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, ev) {
    for (const fn of this.handlers.get(type) || []) fn(ev);
    if (type !== 'audio') for (const fn of this.handlers.get('*') || []) fn(ev);
  }

  onMessage(data) {
    if (typeof data !== 'string') {
      this.emit('audio', new Int16Array(data));
      return;
    }
    let ev;
    try { ev = JSON.parse(data); } catch { return; }
    if (ev.type === 'started') {
      this.sessionId = ev.session_id;
      this.callSid = ev.call_sid;
      this.isLive = true;
      this.startWaiter.resolve(this);
    } else if (ev.type === 'usage') {
      this.usage = ev.records || [];
    } else if (ev.type === 'end') {
      this.endReason = ev.reason;
    }
    this.emit(ev.type, ev);
  }

  onClose(code, reason) {
    this.isLive = false;
    // A refusal closes before `started`: 1008 `bad_token: …`, 1011 a provider failure.
    const [c, ...rest] = (reason || '').split(': ');
    this.startWaiter.reject(new SwitchboardError(c || `closed_${code}`, rest.join(': ') || `socket closed (${code})`));
    const result = { reason: this.endReason || reason || `closed_${code}`, code, usage: this.usage };
    this.emit('close', result);
    this.endWaiter(result);
  }

  /** Send 20 ms of caller audio: PCM16 mono at the call's sample rate. Ignored once the call is over. */
  sendAudio(pcm) {
    if (!this.isLive || this.ws.readyState !== 1) return false;
    this.ws.send(pcm instanceof ArrayBuffer ? pcm : pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
    return true;
  }

  /** A key press (`0`–`9`, `*`, `#`). */
  dtmf(digit) { this.sendJson({ type: 'dtmf', digit }); }

  /** Hang up: the server settles usage, sends `usage` and `end`, then closes. Resolves like `ended`. */
  stop() {
    this.sendJson({ type: 'stop' });
    // No more audio: the server has stopped reading it.
    this.isLive = false;
    return this.ended;
  }

  sendJson(msg) {
    if (this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
  }

  /** Close the socket without a `stop` (the server ends the call `gateway_disconnected`). */
  close() { this.ws.close(); }
}

/** Total of usage records in micro-USD (`amount_micros`), what the org is charged for the call. */
export function totalMicros(records) {
  return records.reduce((sum, r) => sum + (Number(r.amount_micros) || 0), 0);
}

/** `1234567` micro-USD → `"$1.234567"`. */
export function formatMicros(micros) {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  return `${sign}$${Math.floor(abs / 1e6)}.${String(abs % 1e6).padStart(6, '0')}`;
}
