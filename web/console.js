// The console shell: sign in (org API key or admin token, kept in sessionStorage only), then
// one section per concern, each in its own module.
import { api, credential, errorText, el, isOrgKey, masked, signIn, signOut } from '/assets/session.js';
import { keysSection, byokSection } from '/assets/console-keys.js';
import { agentsSection } from '/assets/console-agents.js';
import { balanceSection, callsSection, numbersSection } from '/assets/console-calls.js';
import { adminSection } from '/assets/console-admin.js';

const app = document.getElementById('app');

function signInForm(message) {
  const input = el('input', { id: 'credential', type: 'password', autocomplete: 'off', required: true,
    placeholder: 'sk_… or the admin token' });
  const form = el('form', { id: 'signin', class: 'row', onsubmit: (ev) => {
    ev.preventDefault();
    signIn(input.value);
    render();
  } }, el('label', { for: 'credential' }, 'Org API key or admin token'), input, el('button', { type: 'submit' }, 'Sign in'));
  app.replaceChildren(
    el('h2', {}, 'Sign in'),
    el('p', { class: 'muted' }, 'The key stays in this tab only (session storage): never in a URL or a cookie.'),
    form,
    message ? el('p', { class: 'bad', role: 'alert' }, message) : '',
  );
  input.focus();
}

async function render() {
  const cred = credential();
  if (!cred) return signInForm();
  const admin = !isOrgKey(cred);
  // One request proves the credential before anything is drawn.
  const probe = await api('GET', admin ? '/api/admin/orgs' : '/api/balance');
  if (!probe.ok) {
    signOut();
    return signInForm(`Not signed in: ${errorText(probe)}`);
  }
  const sections = admin
    ? [['admin', 'Admin', adminSection]]
    : [['balance', 'Balance', balanceSection], ['keys', 'Keys', keysSection], ['byok', 'BYOK', byokSection],
      ['agents', 'Agents', agentsSection], ['numbers', 'Numbers', numbersSection], ['calls', 'Calls', callsSection]];
  const main = el('div', { id: 'section' });
  const nav = el('nav', { class: 'row tabs', 'aria-label': 'Console sections' });
  const show = async (id) => {
    for (const b of nav.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.section === id));
    const [, title, fn] = sections.find((s) => s[0] === id);
    main.replaceChildren(el('h2', {}, title));
    await fn(main);
    main.dataset.ready = id;
  };
  for (const [id, title] of sections) {
    nav.append(el('button', { type: 'button', class: 'secondary', 'data-section': id, onclick: () => show(id) }, title));
  }
  const who = el('p', { class: 'row muted' }, `Signed in with ${admin ? 'the admin token' : 'an org key'} ${masked(cred)}`,
    el('button', { type: 'button', class: 'secondary', id: 'signout', onclick: () => { signOut(); render(); } }, 'Sign out'));
  app.replaceChildren(who, nav, main);
  await show(sections[0][0]);
}

render();
