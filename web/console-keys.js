// Console: provider keys (add, replace, delete, check) and the BYOK toggle with its three slots.
import { api, el, errorText } from '/assets/session.js';

/** Providers whose credential is a JSON object rather than one key. */
const JSON_PROVIDERS = ['bedrock', 'polly', 'transcribe', 'azure', 'twilio', 'telnyx', 'plivo', 'vonage'];
const SERVICES = ['stt', 'llm', 'tts'];

/** Carriers take a credential too (webhook signatures, hang-ups on the org's own account). */
const CARRIERS = ['twilio', 'telnyx', 'plivo', 'vonage'];

/** Every provider of the rate table, then the carriers. */
async function providers() {
  const r = await api('GET', '/api/rates/models');
  const names = new Set((r.body?.models || []).filter((m) => m.service !== 'telephony').map((m) => m.provider));
  return [...[...names].sort(), ...CARRIERS];
}

function checkCell(result) {
  if (!result) return el('span', { class: 'check-result muted' }, 'not checked');
  const ok = result.status === 'ok';
  return el('span', { class: `check-result pill ${ok ? 'ok' : 'bad'}`, 'data-status': result.status },
    ok ? 'OK' : `${result.code}: ${result.message}`);
}

export async function keysSection(root) {
  const msg = el('p', { id: 'keys-msg', role: 'status' });
  const table = el('table', { id: 'keys' }, el('thead', {}, el('tr', {},
    ...['provider', 'name', 'key', 'status', ''].map((h) => el('th', {}, h)))), el('tbody'));
  const results = new Map();

  const provider = el('select', { id: 'key-provider' }, ...(await providers()).map((p) => el('option', { value: p }, p)));
  const name = el('input', { id: 'key-name', value: 'default', autocomplete: 'off' });
  const secret = el('textarea', { id: 'key-secret', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'API key, or a JSON object for AWS, Azure and carriers' });
  const hint = () => {
    secret.placeholder = JSON_PROVIDERS.includes(provider.value)
      ? `{"accessKeyId": "…", "secretAccessKey": "…"} (JSON credentials for ${provider.value})` : 'API key';
  };
  provider.addEventListener('change', hint);
  hint();

  async function load() {
    const r = await api('GET', '/api/credentials');
    if (!r.ok) { msg.textContent = errorText(r); return; }
    table.tBodies[0].replaceChildren(...r.body.credentials.map((c) => el('tr', { 'data-id': c.id, 'data-provider': c.provider },
      el('td', {}, c.provider), el('td', {}, c.name), el('td', {}, `…${c.last4}`), el('td', {}, checkCell(results.get(c.id))),
      el('td', { class: 'row' },
        el('button', { type: 'button', class: 'secondary check', onclick: () => check(c.id) }, `Check ${c.provider}`),
        el('button', { type: 'button', class: 'secondary replace', onclick: () => {
          provider.value = c.provider; name.value = c.name; hint(); secret.value = ''; secret.focus();
        } }, 'Replace'),
        el('button', { type: 'button', class: 'secondary delete', onclick: () => remove(c) }, 'Delete')))));
  }

  async function check(id) {
    msg.textContent = 'Checking…';
    const r = await api('POST', id ? `/api/credentials/check?id=${encodeURIComponent(id)}` : '/api/credentials/check');
    if (!r.ok) { msg.textContent = errorText(r); return; }
    for (const res of r.body.results) results.set(res.id, res);
    const bad = r.body.results.filter((x) => x.status !== 'ok').length;
    msg.textContent = `Checked ${r.body.results.length}: ${bad ? `${bad} failed` : 'all OK'}.`;
    await load();
  }

  async function remove(c) {
    if (!confirm(`Delete the ${c.provider} key …${c.last4}?`)) return;
    const r = await api('DELETE', `/api/credentials/${encodeURIComponent(c.id)}`);
    msg.textContent = r.ok ? `Deleted the ${c.provider} key.` : errorText(r);
    results.delete(c.id);
    await load();
  }

  const form = el('form', { id: 'key-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const value = secret.value.trim();
    let body = { provider: provider.value, name: name.value.trim() || 'default' };
    if (value.startsWith('{')) {
      try { body.credentials = JSON.parse(value); } catch { msg.textContent = 'The credentials are not valid JSON.'; return; }
    } else {
      body.apiKey = value;
    }
    const r = await api('PUT', '/api/credentials', body);
    body = null;
    secret.value = '';
    msg.textContent = r.ok ? `Saved ${r.body.provider} …${r.body.last4} (not checked yet).` : errorText(r);
    await load();
  } },
  el('fieldset', {}, el('legend', {}, 'Add or replace a key'),
    el('div', { class: 'row' }, el('label', { for: 'key-provider' }, 'Provider'), provider,
      el('label', { for: 'key-name' }, 'Name'), name),
    el('label', { for: 'key-secret' }, 'Secret'), secret,
    el('div', { class: 'row' }, el('button', { type: 'submit', id: 'key-save' }, 'Save key'))));

  root.append(form, el('div', { class: 'row' },
    el('button', { type: 'button', id: 'check-all', onclick: () => check(null) }, 'Check all')),
  msg, el('div', { class: 'scroll' }, table));
  await load();
}

export async function byokSection(root) {
  const msg = el('p', { id: 'byok-msg', role: 'status' });
  const [state, creds] = await Promise.all([api('GET', '/api/byok'), api('GET', '/api/credentials')]);
  if (!state.ok) { root.append(el('p', { class: 'bad' }, errorText(state))); return; }
  const s = state.body;
  const toggle = el('input', { type: 'checkbox', id: 'byok-toggle', checked: s.useOwnKeys, disabled: !s.byokAllowed,
    'aria-describedby': 'byok-reason' });
  const slots = Object.fromEntries(SERVICES.map((svc) => [svc, el('select', { id: `slot-${svc}` },
    el('option', { value: '' }, 'platform key (managed)'),
    ...(creds.body?.credentials || []).map((c) => el('option', { value: c.id, selected: s.slots[svc] === c.id },
      `${c.provider} · ${c.name} · …${c.last4}`)))]));
  const form = el('form', { id: 'byok-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const body = { slots: Object.fromEntries(SERVICES.map((svc) => [svc, slots[svc].value || null])) };
    if (s.byokAllowed) body.useOwnKeys = toggle.checked;
    const r = await api('PUT', '/api/byok', body);
    msg.textContent = r.ok ? `Saved: ${r.body.useOwnKeys ? 'using your own keys' : 'using platform keys'}.` : errorText(r);
  } },
  el('fieldset', {}, el('legend', {}, 'Use my own keys'),
    el('div', { class: 'row' }, toggle, el('label', { for: 'byok-toggle' }, 'Use my own provider keys (BYOK)')),
    el('p', { id: 'byok-reason', class: s.byokAllowed ? 'muted' : 'bad' },
      s.byokAllowed ? `Your plan (${s.plan}) includes BYOK.` : `Not available: ${s.reason}.`),
    ...SERVICES.map((svc) => el('div', { class: 'row' }, el('label', { for: `slot-${svc}` }, svc.toUpperCase()), slots[svc])),
    el('div', { class: 'row' }, el('button', { type: 'submit', id: 'byok-save' }, 'Save BYOK settings'))));
  root.append(form, msg);
}
