// The signed-in credential (an org API key or the admin token) lives in this tab's
// sessionStorage only: never in a URL, a cookie or localStorage, gone when the tab closes.

const KEY = 'switchboard.credential';

/** The credential, or null when signed out. */
export function credential() {
  return sessionStorage.getItem(KEY);
}

export function signIn(value) {
  sessionStorage.setItem(KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** An org key (`sk_…`) rather than the admin token. */
export function isOrgKey(value) {
  return typeof value === 'string' && value.startsWith('sk_');
}

/** `…abcd`: how a credential is shown. */
export function masked(value) {
  return `…${value.slice(-4)}`;
}

/** An API call with the credential; resolves `{ok, status, body}`, never throws on HTTP errors. */
export async function api(method, path, body) {
  const headers = {};
  const cred = credential();
  if (cred) headers.authorization = `Bearer ${cred}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, body: { error: { code: 'network', message: String(e) } } };
  }
  const text = await resp.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { raw: text }; }
  return { ok: resp.ok, status: resp.status, body: parsed };
}

/** `code: message` of an API error body. */
export function errorText(r) {
  const e = (r.body && r.body.error) || {};
  return `${e.code || `HTTP ${r.status}`}: ${e.message || ''}`.trim();
}

/** A DOM element with text (never HTML) and attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ''));
  return node;
}
