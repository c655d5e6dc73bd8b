// Console: balance, numbers, and calls (the list; per call its transcript, end reason and every
// usage line; spend per day by service and by who paid).
import { api, el, errorText } from '/assets/session.js';
import { formatMicros } from '/assets/client/index.js';

export async function balanceSection(root) {
  const r = await api('GET', '/api/balance');
  if (!r.ok) { root.append(el('p', { class: 'bad' }, errorText(r))); return; }
  const b = r.body;
  const rows = [['Plan', b.plan], ['Credits left', formatMicros(b.creditsLeftMicros)], ['Wallet', formatMicros(b.walletMicros)],
    ['Held by live calls', formatMicros(b.heldMicros)], ['Available', formatMicros(b.availableMicros)]];
  root.append(el('table', { id: 'balance' }, el('tbody', {}, ...rows.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, v))))));
}

export async function numbersSection(root) {
  const msg = el('p', { id: 'numbers-msg', role: 'status' });
  const table = el('table', { id: 'numbers' }, el('thead', {}, el('tr', {}, ...['number', 'carrier', 'agent', ''].map((h) => el('th', {}, h)))), el('tbody'));
  const agents = await api('GET', '/api/agents');
  const number = el('input', { id: 'number', placeholder: '+15550001111', autocomplete: 'off', inputmode: 'tel' });
  const carrier = el('select', { id: 'number-carrier' }, ...['twilio', 'telnyx', 'plivo', 'vonage'].map((c) => el('option', { value: c }, c)));
  const agent = el('select', { id: 'number-agent' }, ...(agents.body?.agents || []).map((a) => el('option', { value: a.id }, a.id)));
  async function load() {
    const r = await api('GET', '/api/numbers');
    if (!r.ok) { msg.textContent = errorText(r); return; }
    table.tBodies[0].replaceChildren(...r.body.numbers.map((n) => el('tr', {}, el('td', {}, n.number), el('td', {}, n.carrier),
      el('td', {}, n.agentId), el('td', {}, el('button', { type: 'button', class: 'secondary', onclick: async () => {
        const d = await api('DELETE', `/api/numbers/${encodeURIComponent(n.id)}`);
        msg.textContent = d.ok ? `Removed ${n.number}.` : errorText(d);
        await load();
      } }, 'Remove')))));
  }
  const form = el('form', { id: 'number-form', class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const r = await api('POST', '/api/numbers', { number: number.value, carrier: carrier.value, agentId: agent.value });
    msg.textContent = r.ok ? `Routed ${r.body.number} to ${r.body.agentId}.` : errorText(r);
    await load();
  } }, el('label', { for: 'number' }, 'Number'), number, el('label', { for: 'number-carrier' }, 'Carrier'), carrier,
  el('label', { for: 'number-agent' }, 'Agent'), agent, el('button', { type: 'submit' }, 'Route'));
  root.append(form, msg, el('div', { class: 'scroll' }, table));
  await load();
}

function usageTable(records) {
  return el('div', { class: 'scroll' }, el('table', { class: 'usage' },
    el('thead', {}, el('tr', {}, ...['line', 'provider', 'model', 'quantity', 'billed to', 'amount', 'list price'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...records.map((u) => el('tr', { 'data-billed-to': u.billed_to, 'data-service': u.service },
      el('td', {}, u.line), el('td', {}, u.provider), el('td', {}, u.model), el('td', {}, `${u.quantity} ${u.unit}`),
      el('td', {}, u.billed_to), el('td', {}, formatMicros(u.amount_micros)), el('td', {}, formatMicros(u.list_micros)))))));
}

/** What was said, as the talk page shows it live: an interrupted agent line ends with a barge-in mark. */
function transcriptList(lines) {
  if (!lines.length) return el('p', { id: 'call-transcript', class: 'muted' }, 'Nothing was said on this call.');
  return el('ol', { id: 'call-transcript', class: 'lines', 'aria-label': 'Transcript' }, ...lines.flatMap((l) => {
    const line = el('li', { class: l.speaker, 'data-speaker': l.speaker }, l.text);
    return l.interrupted ? [line, el('li', { class: 'barge' }, 'caller barged in')] : [line];
  }));
}

/** Spend per day, one bar per (service, billed_to), widths relative to the largest. */
function spendChart(records) {
  const sums = new Map();
  for (const r of records) {
    const day = new Date(r.created_at_ms).toISOString().slice(0, 10);
    const key = `${day} · ${r.service} · ${r.billed_to}`;
    sums.set(key, (sums.get(key) || 0) + r.amount_micros);
  }
  const max = Math.max(1, ...sums.values());
  return el('figure', { id: 'spend-chart' }, el('figcaption', {}, 'Spend per day, by service and by who paid'),
    ...[...sums.entries()].sort().map(([k, v]) => el('div', { class: 'bar-row' }, el('span', {}, k),
      el('span', { class: 'bar', style: undefined, 'data-width': String(Math.round((100 * v) / max)) }), el('span', {}, formatMicros(v)))));
}

export async function callsSection(root) {
  const detail = el('div', { id: 'call-detail' });
  const [calls, usage] = await Promise.all([api('GET', '/api/calls?limit=100'), api('GET', '/api/usage')]);
  if (!calls.ok) { root.append(el('p', { class: 'bad' }, errorText(calls))); return; }
  const chart = spendChart(usage.body?.records || []);
  // CSP forbids inline styles in markup; widths set through the CSSOM are allowed.
  for (const bar of chart.querySelectorAll('.bar')) bar.style.width = `${bar.dataset.width}%`;
  const table = el('table', { id: 'calls' }, el('thead', {}, el('tr', {}, ...['started', 'call', 'gateway', 'status', 'end reason', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...calls.body.calls.map((c) => el('tr', { 'data-session': c.session_id },
      el('td', {}, new Date(c.started_at_ms).toLocaleString()), el('td', {}, el('code', {}, c.call_sid || c.session_id)), el('td', {}, c.gateway),
      el('td', {}, c.status), el('td', {}, c.end_reason || ''),
      el('td', {}, el('button', { type: 'button', class: 'secondary', onclick: () => show(c.session_id, c.call_sid || c.session_id) }, 'Details'))))));
  // By session id: a client call without a `call_id` has no call sid.
  async function show(sessionId, label) {
    const r = await api('GET', `/api/sessions/${encodeURIComponent(sessionId)}`);
    if (!r.ok) { detail.replaceChildren(el('p', { class: 'bad' }, errorText(r))); return; }
    const total = r.body.usage.reduce((s, u) => s + u.amount_micros, 0);
    detail.replaceChildren(el('h3', {}, `Call ${label}`),
      el('p', {}, `Status ${r.body.status}, ended: ${r.body.end_reason || '—'}, total ${formatMicros(total)}`),
      transcriptList(r.body.transcript || []),
      usageTable(r.body.usage));
    detail.dataset.session = sessionId;
    detail.scrollIntoView({ block: 'nearest' });
  }
  root.append(chart, el('div', { class: 'scroll' }, table), detail);
}
