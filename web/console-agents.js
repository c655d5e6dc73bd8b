// Console: agents, created and edited with provider/model/voice pickers fed by the model
// catalog and the access check, so a model that cannot be used says why.
import { api, el, errorText } from '/assets/session.js';

const SERVICES = ['stt', 'llm', 'tts'];

function why(m) {
  if (m.allowed) return 'ok';
  if (m.reason === 'byok_key_required') return `PROVIDER_KEY_REQUIRED: add your ${m.provider} key`;
  return `MODEL_NOT_ALLOWED: ${m.reason}`;
}

function choiceValue(c) { return c ? `${c.provider}/${c.model}` : ''; }

function picker(id, models, selected, optional) {
  const opts = models.map((m) => el('option', { value: `${m.provider}/${m.model}`, 'data-allowed': String(m.allowed),
    selected: `${m.provider}/${m.model}` === selected }, `${m.provider} · ${m.model} (${why(m)})`));
  return el('select', { id }, optional ? el('option', { value: '' }, 'none') : '', ...opts);
}

function parseChoice(value, voice) {
  if (!value) return null;
  const i = value.indexOf('/');
  const c = { provider: value.slice(0, i), model: value.slice(i + 1) };
  if (voice) c.voice = voice;
  return c;
}

export async function agentsSection(root) {
  const msg = el('p', { id: 'agent-msg', role: 'status' });
  const list = el('ul', { id: 'agents-list' });
  const editor = el('div', { id: 'agent-editor' });
  const catalog = await api('GET', '/api/models/catalog');
  const models = catalog.body?.models || [];

  function edit(id, spec) {
    const pick = {};
    const rows = SERVICES.map((svc) => {
      const own = models.filter((m) => m.service === svc);
      pick[svc] = picker(`agent-${svc}`, own, choiceValue(spec?.[svc]), false);
      pick[`${svc}-fallback`] = picker(`agent-${svc}-fallback`, own, choiceValue(spec?.fallbacks?.[svc]?.[0]), true);
      return el('div', { class: 'row' }, el('label', { for: `agent-${svc}` }, svc.toUpperCase()), pick[svc],
        el('label', { for: `agent-${svc}-fallback` }, 'fallback'), pick[`${svc}-fallback`]);
    });
    const voice = el('input', { id: 'agent-voice', value: spec?.tts?.voice || '', autocomplete: 'off' });
    const prompt = el('textarea', { id: 'agent-prompt' });
    prompt.value = spec?.prompt || 'You are a helpful voice agent. Be brief.';
    // Tools are edited as the API's JSON (docs/tools.md); the server checks them on save.
    const tools = el('textarea', { id: 'agent-tools', spellcheck: 'false', placeholder: '[{"name": "end_call", "run": {"type": "end_call"}}]' });
    tools.value = spec?.tools?.length ? JSON.stringify(spec.tools, null, 2) : '';
    const form = el('form', { id: 'agent-form', onsubmit: async (ev) => {
      ev.preventDefault();
      // What this form does not edit (timeouts, apology line, call length) is kept as it was.
      const body = { ...(spec || {}), prompt: prompt.value };
      delete body.fallbacks;
      try {
        const declared = tools.value.trim() ? JSON.parse(tools.value) : [];
        if (declared.length) body.tools = declared; else delete body.tools;
      } catch (e) {
        msg.textContent = `Tools: not valid JSON (${e.message})`;
        msg.className = 'bad';
        return;
      }
      const fallbacks = {};
      for (const svc of SERVICES) {
        body[svc] = parseChoice(pick[svc].value, svc === 'tts' ? voice.value.trim() || undefined : undefined);
        const fb = parseChoice(pick[`${svc}-fallback`].value);
        if (fb) fallbacks[svc] = [fb];
      }
      if (Object.keys(fallbacks).length) body.fallbacks = fallbacks;
      const r = id ? await api('PUT', `/api/agents/${encodeURIComponent(id)}`, body) : await api('POST', '/api/agents', body);
      msg.textContent = r.ok ? `Saved agent ${r.body.id}.` : errorText(r);
      msg.className = r.ok ? 'ok' : 'bad';
      if (r.ok) { msg.dataset.agentId = r.body.id; await load(); }
    } }, el('fieldset', {}, el('legend', {}, id ? `Edit ${id}` : 'New agent'), ...rows,
      el('div', { class: 'row' }, el('label', { for: 'agent-voice' }, 'Voice'), voice),
      el('label', { for: 'agent-prompt' }, 'Prompt'), prompt,
      el('label', { for: 'agent-tools' }, 'Tools (JSON, see docs/tools.md)'), tools,
      el('div', { class: 'row' }, el('button', { type: 'submit', id: 'agent-save' }, id ? 'Save changes' : 'Create agent'),
        id ? el('button', { type: 'button', class: 'secondary', onclick: () => edit(null, null) }, 'New agent') : '')));
    editor.replaceChildren(form);
  }

  async function load() {
    const r = await api('GET', '/api/agents');
    if (!r.ok) { msg.textContent = errorText(r); return; }
    list.replaceChildren(...r.body.agents.map((a) => el('li', { 'data-id': a.id, class: 'row' },
      el('code', {}, a.id), el('span', { class: 'muted' }, `${a.agent.stt?.provider} → ${a.agent.llm?.model} → ${a.agent.tts?.provider}`),
      el('button', { type: 'button', class: 'secondary', onclick: () => edit(a.id, a.agent) }, 'Edit'),
      el('a', { href: `/talk?agent=${encodeURIComponent(a.id)}` }, 'Talk'))));
  }

  root.append(list, editor, msg);
  edit(null, null);
  await load();
}
