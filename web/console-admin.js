// Console, admin token: create orgs (the key is shown once), top up wallets, set plans, and the
// rate table's managed switch per provider and service (refusals such as
// `managed_key_missing` are shown, not swallowed).
import { api, el, errorText } from '/assets/session.js';
import { formatMicros } from '/assets/client/index.js';

function result(id) { return el('p', { id, role: 'status' }); }

function table(id, heads) {
  return el('table', { id }, el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', {}, h)))), el('tbody'));
}

export async function adminSection(root) {
  const orgs = table('orgs', ['org', 'name', 'plan', 'wallet', 'credits used', 'BYOK']);
  const plans = table('plans', ['plan', 'monthly credits', 'BYOK', 'markup', 'models', '']);
  async function loadOrgs() {
    const r = await api('GET', '/api/admin/orgs');
    orgs.tBodies[0].replaceChildren(...(r.body?.orgs || []).map((o) => el('tr', { 'data-org': o.orgId },
      el('td', {}, el('code', {}, o.orgId)), el('td', {}, o.name), el('td', {}, o.plan), el('td', {}, formatMicros(o.walletMicros)),
      el('td', {}, formatMicros(o.creditsUsedMicros)), el('td', {}, o.useOwnKeys ? 'on' : 'off'))));
  }
  async function loadPlans() {
    const r = await api('GET', '/api/admin/plans');
    plans.tBodies[0].replaceChildren(...(r.body?.plans || []).map((p) => el('tr', { 'data-plan': p.id },
      el('td', {}, p.id), el('td', {}, formatMicros(p.monthly_credit_micros)), el('td', {}, p.byok_allowed ? 'yes' : 'no'),
      el('td', {}, `${p.byok_markup_bps / 100}%`), el('td', {}, p.allowed_models ? p.allowed_models.join(', ') : 'all priced'),
      el('td', {}, el('button', { type: 'button', class: 'secondary', onclick: () => {
        planJson.value = JSON.stringify(p, null, 1);
        planJson.focus();
      } }, `Edit ${p.id}`)))));
  }
  const orgMsg = result('org-msg');
  const name = el('input', { id: 'org-name', autocomplete: 'off', required: true });
  const plan = el('input', { id: 'org-plan', value: 'pro', autocomplete: 'off' });
  const orgForm = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const r = await api('POST', '/api/admin/orgs', { name: name.value, plan: plan.value });
    orgMsg.replaceChildren(r.ok ? `Created ${r.body.orgId}. Its API key, shown once: ` : errorText(r),
      r.ok ? el('code', { id: 'new-org-key' }, r.body.apiKey) : '');
    await loadOrgs();
  } }, el('label', { for: 'org-name' }, 'Name'), name, el('label', { for: 'org-plan' }, 'Plan'), plan,
  el('button', { type: 'submit' }, 'Create org'));

  const walletMsg = result('wallet-msg');
  const walletOrg = el('input', { id: 'wallet-org', autocomplete: 'off', required: true });
  const amount = el('input', { id: 'wallet-amount', type: 'number', value: '5000000', required: true });
  const walletForm = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const r = await api('POST', `/api/admin/orgs/${encodeURIComponent(walletOrg.value)}/wallet`, { amountMicros: Number(amount.value) });
    walletMsg.textContent = r.ok ? `Wallet of ${r.body.orgId}: ${formatMicros(r.body.walletMicros)}` : errorText(r);
    await loadOrgs();
  } }, el('label', { for: 'wallet-org' }, 'Org id'), walletOrg, el('label', { for: 'wallet-amount' }, 'Micro-USD'), amount,
  el('button', { type: 'submit' }, 'Top up'));

  const planMsg = result('plan-msg');
  const planJson = el('textarea', { id: 'plan-json' });
  planJson.value = JSON.stringify({ id: 'team', monthly_credit_micros: 50000000, byok_allowed: true, byok_markup_bps: 500 }, null, 1);
  const planForm = el('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    let body;
    try { body = JSON.parse(planJson.value); } catch { planMsg.textContent = 'Not valid JSON.'; return; }
    const r = await api('PUT', '/api/admin/plans', body);
    planMsg.textContent = r.ok ? `Saved plan ${r.body.plan.id}.` : errorText(r);
    await loadPlans();
  } }, el('label', { for: 'plan-json' }, 'Plan (JSON, create or replace)'), planJson, el('button', { type: 'submit' }, 'Save plan'));

  const ratesMsg = result('rates-msg');
  const rates = el('table', { id: 'rates' });
  async function loadRates() {
    const r = await api('GET', '/api/rates/models');
    const groups = new Map();
    for (const m of r.body?.models || []) {
      const k = `${m.service}|${m.provider}`;
      if (!groups.has(k)) groups.set(k, { service: m.service, provider: m.provider, managed: false, models: 0 });
      const g = groups.get(k);
      g.models++;
      g.managed = g.managed || m.managed;
    }
    rates.replaceChildren(el('thead', {}, el('tr', {}, ...['service', 'provider', 'models', 'managed'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...[...groups.values()].map((g) => {
        const id = `managed-${g.service}-${g.provider}`;
        const box = el('input', { type: 'checkbox', id, checked: g.managed, onchange: async () => {
          const res = await api('PUT', '/api/admin/rates/managed', { provider: g.provider, service: g.service, managed: box.checked });
          ratesMsg.textContent = res.ok ? `${g.provider} (${g.service}) managed: ${res.body.managed}.` : errorText(res);
          ratesMsg.className = res.ok ? 'ok' : 'bad';
          await loadRates();
        } });
        return el('tr', {}, el('td', {}, g.service), el('td', {}, g.provider), el('td', {}, String(g.models)),
          el('td', {}, box, el('label', { for: id }, ` managed (${g.provider} ${g.service})`)));
      })));
  }
  root.append(el('h3', {}, 'Orgs'), el('div', { class: 'scroll' }, orgs), orgForm, orgMsg, walletForm, walletMsg,
    el('h3', {}, 'Plans'), el('div', { class: 'scroll' }, plans), planForm, planMsg,
    el('h3', {}, 'Rates: managed by the platform'), ratesMsg, el('div', { class: 'scroll' }, rates));
  await Promise.all([loadOrgs(), loadPlans(), loadRates()]);
}
