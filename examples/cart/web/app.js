// The cart cluster page (served by cart-server at /app.js; see docs/cart-api.md).
//
// It reads GET /cluster on its own origin, shows one column per replica (this
// node and every member with an http address) with that replica's view of the
// chosen cart, read from the replica directly every POLL_MS, and lets you
// write on any replica and cut or heal the gossip links between them.
//
// Every set, remove and empty sends the Cart-Context of the view it acts on
// (docs/cart-api.md): a line row's buttons act on what that column shows; a
// missing line's ✕ deletes it at a replica that has not received it, as
// another column shows it — the deleted line does not come back after a heal.
//
// Stable hooks for tests (ids are unique; data-testid may repeat per column/row):
//   #node-name          [data-testid=node-name]    name of the node serving the page
//   #cart-id            [data-testid=cart-id]      cart id input (default "demo"; ?cart=ID sets it)
//   #convergence        [data-testid=convergence]  data-state = agree | differ | unknown
//   #columns            one [data-testid=column] per replica:
//       data-node=NAME, data-reachable=true|false|unknown, data-cart=ID of the cart shown,
//       data-self=true on the page's own node
//     [data-testid=status]      reachability and address
//     [data-testid=blocked]     peers this replica's gossip is cut from
//     [data-testid=members]     li[data-testid=member][data-member=NAME][data-state=alive|suspect|dead|left][data-lag=N]
//     [data-testid=line]        one per cart line: data-sku, data-quantity, data-differs=true|false
//         [data-testid=qty] [data-testid=inc] (+1) [data-testid=set-qty] (input) [data-testid=set] [data-testid=remove]
//     [data-testid=missing]     a line other replicas have and this one lacks: data-sku
//         [data-testid=remove-seen] delete it here as another replica shows it (with that
//                                   replica's Cart-Context: stays deleted after a heal)
//     [data-testid=empty-note]  shown when the cart is empty here
//     [data-testid=add-sku] [data-testid=add-qty] [data-testid=add]   add form (POST)
//     [data-testid=empty]       empty the cart (DELETE /carts/ID)
//     [data-testid=error]       last API error of this column (role=alert)
//   #link-rows          one tr[data-testid=link] per pair: data-a, data-b (a < b), data-state=ok|cut|unknown
//     [data-testid=cut] [data-testid=heal]
//   #heal-all           [data-testid=heal-all]     DELETE /admin/partition on every replica
//   #link-error         [data-testid=link-error]
//   #fault-notice       [data-testid=fault-notice] shown when fault injection is off (buttons hidden)
//   #global-error       [data-testid=global-error] this page's own node cannot be reached
'use strict';

const POLL_MS = 500;
const TIMEOUT_MS = 2000;
const CART_ID = /^[A-Za-z0-9._~-]{1,128}$/;

const replicas = new Map(); // name -> replica (see addReplica)
let selfName = null;
let cartId = initialCart();
let renderQueued = false;
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function initialCart() {
  const c = new URLSearchParams(location.search).get('cart');
  return c && CART_ID.test(c) ? c : 'demo';
}

// Path segment encoding: encodeURIComponent leaves !'()* alone; encode them too.
const seg = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// "HOST:PORT" -> "http://HOST:PORT"; a wildcard host means "the host this page came from".
function baseFor(http) {
  const i = http.lastIndexOf(':');
  let host = http.slice(0, i);
  if (host === '' || host === '0.0.0.0' || host === '[::]') host = location.hostname;
  return `http://${host}${http.slice(i)}`;
}

class ApiError extends Error {}

// One request to a replica; resolves to the parsed JSON body, rejects with ApiError.
async function api(r, method, path, body, context) {
  const init = { method, cache: 'no-store', signal: AbortSignal.timeout(TIMEOUT_MS), headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (context) init.headers['Cart-Context'] = context;
  let res;
  try {
    res = await fetch(r.base + path, init);
  } catch (e) {
    throw new ApiError(e.name === 'TimeoutError' ? 'unreachable (no answer within 2 s)' : 'unreachable');
  }
  const text = await res.text().catch(() => '');
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) throw new ApiError((json && json.error) || `HTTP ${res.status} ${res.statusText}`.trim());
  return json;
}

const cartPath = (cart) => `/carts/${seg(cart)}`;
const itemPath = (cart, sku) => `${cartPath(cart)}/items/${seg(sku)}`;

// ---------------------------------------------------------------- replicas and polling

function addReplica(name, base, http) {
  const r = {
    name, base, http,
    cluster: null, clusterError: null, fault: null, // fault: last known fault_injection
    cart: null, cartFor: null, cartError: null, context: null, // context: of the cart shown
    reqs: 0, applied: 0, clusterFrom: 0, // request counter: a later request's answer wins
    ui: null,
  };
  replicas.set(name, r);
  r.ui = buildColumn(r);
  placeColumns();
  pollLoop(r);
  return r;
}

async function pollLoop(r) {
  for (;;) {
    await refresh(r);
    await sleep(POLL_MS);
  }
}

async function refresh(r) {
  const cart = cartId;
  const n = ++r.reqs;
  const [cl, ct] = await Promise.allSettled([api(r, 'GET', '/cluster'), api(r, 'GET', cartPath(cart))]);
  if (n > r.clusterFrom) {
    r.clusterFrom = n;
    if (cl.status === 'fulfilled') {
      r.cluster = cl.value;
      r.clusterError = null;
      r.fault = !!r.cluster.fault_injection;
      discover(r.cluster);
    }
    else { r.cluster = null; r.clusterError = cl.reason.message; } // nothing stale is shown
  }
  if (ct.status === 'fulfilled') applyCart(r, n, cart, ct.value);
  else if (n > r.applied && cart === cartId) { r.applied = n; r.cartError = ct.reason.message; }
  scheduleRender();
}

function applyCart(r, n, cart, body) {
  if (n <= r.applied || cart !== cartId || !body || !Array.isArray(body.items)) return;
  r.applied = n;
  r.cart = body.items;
  r.context = typeof body.context === 'string' ? body.context : null;
  r.cartFor = cart;
  r.cartError = null;
  scheduleRender();
}

// Every member that has an http address gets a column (also ones learnt from other replicas).
function discover(cluster) {
  for (const m of cluster.members || []) {
    if (!m.http || m.name === selfName) continue;
    const r = replicas.get(m.name);
    if (!r) addReplica(m.name, baseFor(m.http), m.http);
    else if (r.name !== selfName && r.http !== m.http) { r.http = m.http; r.base = baseFor(m.http); }
  }
}

// Writes: the answer is the cart at that replica; errors go under the column.
// `context`: the Cart-Context of the view the write acts on.
async function write(r, method, path, body, context) {
  const cart = cartId;
  const n = ++r.reqs;
  try {
    applyCart(r, n, cart, await api(r, method, path, body, context));
    r.ui.error.textContent = '';
    return true;
  } catch (e) {
    r.ui.error.textContent = `${method} ${decodeURIComponent(path)}: ${e.message}`;
    return false;
  }
}

// ---------------------------------------------------------------- columns

function buildColumn(r) {
  const ui = {};
  const sku = h('input', { 'data-testid': 'add-sku', name: 'sku', required: true, maxlength: 128, autocomplete: 'off', spellcheck: 'false' });
  const qty = h('input', { 'data-testid': 'add-qty', name: 'quantity', type: 'number', min: 1, max: 1000000, step: 1, value: 1, required: true });
  const form = h('form', { class: 'add', 'data-testid': 'add-form', 'aria-label': `Add an item on ${r.name}` },
    h('label', {}, 'SKU ', sku), h('label', {}, 'Qty ', qty),
    h('button', { type: 'submit', 'data-testid': 'add' }, 'Add'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const sent = sku.value;
    if (await write(r, 'POST', `${cartPath(cartId)}/items`, { sku: sent, quantity: Number(qty.value) }) && sku.value === sent) sku.value = '';
  });

  ui.title = h('h3', {}, r.name);
  ui.status = h('p', { class: 'status', 'data-testid': 'status' });
  ui.blocked = h('p', { class: 'blocked', 'data-testid': 'blocked' });
  ui.members = h('ul', { class: 'members', 'data-testid': 'members', 'aria-label': `Members as ${r.name} sees them` });
  ui.rows = h('tbody');
  ui.rowMap = new Map();
  ui.table = h('table', { class: 'lines', 'data-testid': 'lines' },
    h('caption', { class: 'visually-hidden' }, `Cart lines at ${r.name}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'SKU'), h('th', { scope: 'col' }, 'Qty'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    ui.rows);
  ui.emptyNote = h('p', { class: 'empty-note', 'data-testid': 'empty-note' }, 'The cart is empty here.');
  ui.error = h('p', { class: 'error', 'data-testid': 'error', role: 'alert' });
  ui.empty = h('button', { type: 'button', class: 'danger', 'data-testid': 'empty', onclick: () => write(r, 'DELETE', cartPath(cartId), undefined, shownContext(r)) }, 'Empty cart');
  ui.el = h('section', { class: 'column', 'data-testid': 'column', 'data-node': r.name, 'data-reachable': 'unknown', 'aria-label': `Replica ${r.name}` },
    h('header', {}, ui.title, ui.status), ui.blocked, ui.members, ui.table, ui.emptyNote, form,
    h('p', { class: 'column-actions' }, ui.empty), ui.error);
  return ui;
}

function placeColumns() {
  const names = [...replicas.keys()].sort();
  const cols = $('columns');
  const want = names.map((n) => replicas.get(n).ui.el);
  if (want.some((el, i) => cols.children[i] !== el)) cols.replaceChildren(...want);
}

function lineRow(r, sku) {
  const setQty = h('input', { type: 'number', min: 0, max: 1000000, step: 1, class: 'set-qty', 'data-testid': 'set-qty', 'aria-label': `New quantity of ${sku} at ${r.name}` });
  const set = () => {
    if (setQty.value === '') { r.ui.error.textContent = `enter a quantity for ${sku} first`; return; }
    const sent = setQty.value;
    write(r, 'PUT', itemPath(cartId, sku), { quantity: Number(sent) }, shownContext(r)).then((ok) => { if (ok && setQty.value === sent) setQty.value = ''; });
  };
  setQty.addEventListener('keydown', (e) => { if (e.key === 'Enter') set(); });
  const qty = h('td', { class: 'qty', 'data-testid': 'qty' });
  const tr = h('tr', { 'data-testid': 'line', 'data-sku': sku },
    h('th', { scope: 'row', class: 'sku' }, h('span', { class: 'marker', 'aria-hidden': 'true' }, '≠'), sku,
      h('span', { class: 'visually-hidden differs-text' }, ' (differs from other replicas)')),
    qty,
    h('td', { class: 'line-actions' }, h('div', {},
      h('button', { type: 'button', 'data-testid': 'inc', 'aria-label': `Add one ${sku} at ${r.name}`, title: 'Add one', onclick: () => write(r, 'POST', `${cartPath(cartId)}/items`, { sku, quantity: 1 }) }, '+1'),
      setQty,
      h('button', { type: 'button', 'data-testid': 'set', 'aria-label': `Set the quantity of ${sku} at ${r.name}`, onclick: set }, 'Set'),
      h('button', { type: 'button', class: 'danger', 'data-testid': 'remove', 'aria-label': `Remove ${sku} at ${r.name}`, title: 'Remove the line', onclick: () => write(r, 'DELETE', itemPath(cartId, sku), undefined, shownContext(r)) }, '✕'))));
  return { tr, qty };
}

// The context of the cart column r shows (null when it shows another cart).
function shownContext(r) {
  return r.cartFor === cartId ? r.context : null;
}

// A line r lacks: its ✕ deletes it at r as the first other column showing it saw it.
function missingRow(r, sku) {
  const removeSeen = () => {
    const source = [...replicas.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).find((o) =>
      o !== r && shownContext(o) && (o.cart || []).some((i) => i.sku === sku));
    if (!source) { r.ui.error.textContent = `no replica shows ${sku} any more`; return; }
    write(r, 'DELETE', itemPath(cartId, sku), undefined, source.context);
  };
  const tr = h('tr', { 'data-testid': 'missing', 'data-sku': sku, class: 'missing' },
    h('th', { scope: 'row', class: 'sku' }, h('span', { class: 'marker', 'aria-hidden': 'true' }, '≠'), sku),
    h('td', { class: 'qty' }, '—'), h('td', { class: 'line-actions' }, h('div', {}, 'not here; other replicas have it',
      h('button', { type: 'button', class: 'danger', 'data-testid': 'remove-seen', 'aria-label': `Remove ${sku} at ${r.name} as another replica shows it`, title: 'Remove here, as another replica shows it (with its context)', onclick: removeSeen }, '✕'))));
  return { tr, qty: null };
}

// views: name -> Map(sku -> quantity) of the replicas whose current cart is known.
function renderColumn(r, views) {
  const ui = r.ui;
  const known = views.has(r.name);
  const reachable = r.cartError ? 'false' : known ? 'true' : 'unknown';
  setAttr(ui.el, 'data-reachable', reachable);
  setAttr(ui.el, 'data-cart', known ? r.cartFor : '');
  setAttr(ui.el, 'data-self', String(r.name === selfName));
  ui.el.classList.toggle('unreachable', reachable === 'false');
  const tag = r.name === selfName ? ' · this page' : '';
  const problem = r.cartError || (r.clusterError && `/cluster: ${r.clusterError}`);
  setText(ui.status, problem ? `${problem} · ${r.http}${tag}`
    : reachable === 'true' ? `reachable · ${r.http}${tag}` : `connecting · ${r.http}${tag}`);

  const c = r.cluster;
  const blocked = c && c.blocked && c.blocked.length ? `gossip cut from: ${c.blocked.join(', ')}` : '';
  setText(ui.blocked, blocked);
  ui.blocked.hidden = !blocked;
  renderMembers(ui.members, c);

  const mine = views.get(r.name) || new Map();
  const others = [...views].filter(([n]) => n !== r.name).map(([, v]) => v);
  const missing = new Set();
  for (const o of others) for (const sku of o.keys()) if (!mine.has(sku)) missing.add(sku);
  const keys = [...(known ? mine.keys() : [])].map((s) => 'L' + s)
    .concat([...(known ? missing : [])].map((s) => 'M' + s))
    .sort((a, b) => (a.slice(1) < b.slice(1) ? -1 : a.slice(1) > b.slice(1) ? 1 : 0));
  for (const [k, row] of ui.rowMap) if (!keys.includes(k)) { row.tr.remove(); ui.rowMap.delete(k); }
  keys.forEach((k, i) => {
    const sku = k.slice(1);
    let row = ui.rowMap.get(k);
    if (!row) { row = k[0] === 'L' ? lineRow(r, sku) : missingRow(r, sku); ui.rowMap.set(k, row); }
    if (ui.rows.children[i] !== row.tr) ui.rows.insertBefore(row.tr, ui.rows.children[i] || null);
    const differs = k[0] === 'M' || others.some((o) => o.get(sku) !== mine.get(sku));
    row.tr.classList.toggle('differs', differs);
    setAttr(row.tr, 'data-differs', String(differs));
    if (row.qty) { setText(row.qty, String(mine.get(sku))); setAttr(row.tr, 'data-quantity', String(mine.get(sku))); }
  });
  ui.table.hidden = keys.length === 0;
  ui.emptyNote.hidden = !(known && mine.size === 0);
}

function renderMembers(ul, c) {
  const members = c ? [...(c.members || [])].sort((a, b) => (a.name < b.name ? -1 : 1)) : [];
  const key = JSON.stringify(members.map((m) => [m.name, m.state, m.lag]));
  if (ul.dataset.key === key) return;
  ul.dataset.key = key;
  ul.replaceChildren(...members.map((m) => h('li', { 'data-testid': 'member', 'data-member': m.name, 'data-state': m.state, 'data-lag': m.lag ?? '', class: `state-${m.state}` },
    h('span', { class: 'member-name' }, m.name), ' ', h('span', { class: 'member-state' }, m.state),
    m.lag == null ? '' : h('span', { class: 'member-lag' }, ` · lag ${m.lag}`))));
  if (!members.length) ul.append(h('li', { class: 'none' }, c ? 'no other members known' : 'members unknown'));
}

// ---------------------------------------------------------------- convergence

function renderConvergence(views) {
  const el = $('convergence');
  const names = [...replicas.keys()].sort();
  const waiting = names.filter((n) => !views.has(n));
  const sigs = new Set([...views.values()].map((v) => JSON.stringify([...v])));
  let state, text;
  if (sigs.size > 1) {
    const groups = new Map();
    for (const [n, v] of views) {
      const s = JSON.stringify([...v]);
      groups.set(s, [...(groups.get(s) || []), n]);
    }
    state = 'differ';
    text = `Replicas differ: ${[...groups.values()].map((g) => g.join(' = ')).join(' ≠ ')}`;
  } else if (waiting.length || views.size === 0) {
    state = 'unknown';
    text = views.size ? `Reachable replicas agree; no answer from ${waiting.join(', ')}` : 'Waiting for the replicas…';
  } else {
    state = 'agree';
    text = `All ${views.size} replicas agree on cart “${cartId}”`;
  }
  setAttr(el, 'data-state', state);
  setText(el, text);
}

// ---------------------------------------------------------------- links

const linkRows = new Map(); // "a\0b" -> {tr, state, cut, heal, note}
const linkBusy = new Set();

const blockedOf = (r) => (r && r.cluster && Array.isArray(r.cluster.blocked) ? r.cluster.blocked : null);
const faultOn = (r) => !!(r && r.cluster && r.cluster.fault_injection);

function linkState(a, b) {
  const ba = blockedOf(a), bb = blockedOf(b);
  const by = [];
  if (ba && ba.includes(b.name)) by.push(a.name);
  if (bb && bb.includes(a.name)) by.push(b.name);
  if (by.length) return { state: 'cut', text: `cut (by ${by.join(' and ')})` };
  if (ba && bb) return { state: 'ok', text: 'connected' };
  return { state: 'unknown', text: `unknown (no answer from ${ba ? b.name : a.name})` };
}

function renderLinks() {
  const self = replicas.get(selfName);
  const enabled = !!(self && self.fault);
  const notice = $('fault-notice');
  notice.hidden = !self || self.fault !== false;
  setText(notice, `${selfName} was started without --allow-fault-injection: links cannot be cut or healed from this page.`);
  $('heal-all').hidden = !enabled;
  $('heal-all').disabled = linkBusy.has('*');
  document.querySelector('.link-actions-head').hidden = !enabled;

  const names = [...replicas.keys()].sort();
  const want = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const a = replicas.get(names[i]), b = replicas.get(names[j]);
      const key = `${a.name}\0${b.name}`;
      let row = linkRows.get(key);
      if (!row) { row = linkRow(a, b); linkRows.set(key, row); }
      const s = linkState(a, b);
      setAttr(row.tr, 'data-state', s.state);
      row.tr.className = `link-${s.state}`;
      setText(row.state, s.text);
      // Usable when every end that answers has fault injection on (an end that does not answer
      // reports its error; the other end still does its part).
      const ends = [a, b].filter((x) => x.cluster);
      const usable = ends.length > 0 && ends.every(faultOn);
      row.actions.hidden = !enabled;
      const busy = linkBusy.has(key);
      row.cut.disabled = busy || !usable || s.state === 'cut';
      row.heal.disabled = busy || !usable || s.state === 'ok';
      const off = ends.filter((x) => !faultOn(x)).map((x) => x.name);
      setText(row.note, off.length ? `${off.join(' and ')}: fault injection off` : '');
      want.push(row.tr);
    }
  }
  const tbody = $('link-rows');
  if (want.length !== tbody.children.length || want.some((tr, i) => tbody.children[i] !== tr)) tbody.replaceChildren(...want);
}

function linkRow(a, b) {
  const key = `${a.name}\0${b.name}`;
  const state = h('td', { 'data-testid': 'link-state' });
  const cut = h('button', { type: 'button', 'data-testid': 'cut', 'aria-label': `Cut the link ${a.name} – ${b.name}`, onclick: () => linkAction(key, () => cutLink(a, b)) }, 'Cut');
  const heal = h('button', { type: 'button', 'data-testid': 'heal', 'aria-label': `Heal the link ${a.name} – ${b.name}`, onclick: () => linkAction(key, () => healLink(a, b)) }, 'Heal');
  const note = h('span', { class: 'note' });
  const actions = h('td', { class: 'link-actions' }, cut, ' ', heal, ' ', note);
  const tr = h('tr', { 'data-testid': 'link', 'data-a': a.name, 'data-b': b.name },
    h('th', { scope: 'row' }, `${a.name} ↔ ${b.name}`), state, actions);
  return { tr, state, cut, heal, note, actions };
}

async function linkAction(key, fn) {
  linkBusy.add(key);
  scheduleRender();
  try {
    const errors = (await fn()).filter(Boolean);
    setText($('link-error'), errors.join('; '));
  } finally {
    linkBusy.delete(key);
    await Promise.all([...replicas.values()].map(refresh));
  }
}

const attempt = (label, p) => p.then(() => null, (e) => `${label}: ${e.message}`);

// Cutting is done on both ends so each one's "blocked" names the other.
const cutLink = (a, b) => Promise.all([
  attempt(`cut on ${a.name}`, api(a, 'POST', '/admin/partition', { peers: [b.name] })),
  attempt(`cut on ${b.name}`, api(b, 'POST', '/admin/partition', { peers: [a.name] })),
]);

// The API only heals all cuts of a node: heal it, then cut again what should stay cut.
async function healSide(x, y) {
  const now = await api(x, 'GET', '/cluster');
  const keep = (now.blocked || []).filter((n) => n !== y.name);
  await api(x, 'DELETE', '/admin/partition');
  if (keep.length) await api(x, 'POST', '/admin/partition', { peers: keep });
}

const healLink = (a, b) => Promise.all([
  attempt(`heal on ${a.name}`, healSide(a, b)),
  attempt(`heal on ${b.name}`, healSide(b, a)),
]);

const healAll = () => Promise.all([...replicas.values()].map((r) => attempt(`heal on ${r.name}`, api(r, 'DELETE', '/admin/partition'))));

// ---------------------------------------------------------------- render

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => { renderQueued = false; render(); });
}

function render() {
  const views = new Map();
  for (const r of replicas.values()) {
    if (r.cartFor === cartId && r.cart && !r.cartError) views.set(r.name, new Map(r.cart.map((i) => [i.sku, i.quantity])));
  }
  for (const r of replicas.values()) renderColumn(r, views);
  renderConvergence(views);
  renderLinks();
}

function switchCart(id) {
  if (id === cartId) return;
  cartId = id;
  const url = new URL(location.href);
  url.searchParams.set('cart', id);
  history.replaceState(null, '', url);
  for (const r of replicas.values()) { r.cart = null; r.cartFor = null; r.cartError = null; r.ui.error.textContent = ''; refresh(r); }
  scheduleRender();
}

// ---------------------------------------------------------------- start

async function start() {
  const input = $('cart-id');
  input.value = cartId;
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    if (CART_ID.test(input.value)) timer = setTimeout(() => switchCart(input.value), 250);
  });
  $('cart-form').addEventListener('submit', (e) => { e.preventDefault(); if (CART_ID.test(input.value)) switchCart(input.value); });
  $('heal-all').addEventListener('click', () => linkAction('*', healAll));

  const here = { base: '' };
  for (;;) {
    try {
      const c = await api(here, 'GET', '/cluster');
      selfName = c.node;
      setText($('node-name'), `${c.node} (${c.http})`);
      $('global-error').textContent = '';
      const hint = $('origin-hint');
      hint.hidden = baseFor(c.http) === location.origin;
      hint.textContent = `open ${baseFor(c.http)}/ for the other replicas to accept this page (CORS)`;
      Object.assign(addReplica(c.node, '', c.http), { cluster: c, fault: !!c.fault_injection });
      discover(c);
      return;
    } catch (e) {
      $('global-error').textContent = `cannot read /cluster from this page's node: ${e.message}; retrying`;
      await sleep(1000);
    }
  }
}

start();
