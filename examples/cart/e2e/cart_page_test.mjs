// End-to-end test of the cart cluster page (examples/cart/web) in headless Chromium.
//
//   node cart_page_test.mjs --url http://127.0.0.1:PORT/ --screenshot OUT.png [--playwright-dir DIR]
//
// URL is the page of node 1 of a running 3-node cluster started with
// --allow-fault-injection (run_e2e.sh does that). Through the page's own
// controls only, it:
//   1. waits for three reachable columns, every member alive;
//   2. switches to a fresh cart, adds banana x1 on n1 and waits until every replica has it;
//   3. cuts n1-n2 and n1-n3 (n2-n3 stays up);
//   4. on n1: adds apple x1, +1 (apple 2), removes banana (observed remove);
//      on n2: adds apple x2, sets it to 3 (PUT), adds pear x1;
//   5. checks the replicas differ and stay apart while partitioned (n1 {apple 2},
//      n2 = n3 {apple 3, banana 1, pear 1}), with the differing lines marked;
//      then, still cut, deletes pear on n1 — which never received it — with the ✕
//      of n1's "missing" pear row (n2's Cart-Context: the issue-10 anomaly);
//   6. heals everything and waits (at most 30 s) until every column shows exactly
//      {apple 5} (quantities sum, the observed remove of banana holds, and the pear
//      deleted on n1 stays deleted: docs/semantics.md) and the page says all
//      replicas agree; checks the API agrees;
//   7. saves a screenshot to OUT.png, then empties the cart on n3 and waits until it is
//      empty everywhere.
// Exit 0 pass, 1 fail (the reason is printed; a screenshot of the failure is saved).
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    screenshot: { type: 'string' },
    'playwright-dir': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
});
if (!opt.url || !opt.screenshot) {
  console.error('usage: cart_page_test.mjs --url URL --screenshot PNG [--playwright-dir DIR] [--chromium PATH]');
  process.exit(2);
}

const require = createRequire(opt['playwright-dir'] ? path.join(path.resolve(opt['playwright-dir']), 'node_modules', 'x.js') : import.meta.url);
const { chromium } = require('playwright-core');

const CONVERGE_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 15_000;
const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

class Fail extends Error {}

// What the page shows, read from its DOM (the hooks documented at the top of app.js).
function readPage() {
  const q = (root, sel) => [...root.querySelectorAll(sel)];
  const columns = {};
  for (const col of q(document, '[data-testid=column]')) {
    const items = {};
    for (const tr of q(col, '[data-testid=line]')) items[tr.dataset.sku] = Number(tr.querySelector('[data-testid=qty]').textContent);
    const members = {};
    for (const li of q(col, '[data-testid=member]')) members[li.dataset.member] = li.dataset.state;
    columns[col.dataset.node] = {
      self: col.dataset.self === 'true',
      reachable: col.dataset.reachable,
      cart: col.dataset.cart,
      status: col.querySelector('[data-testid=status]').textContent,
      blocked: col.querySelector('[data-testid=blocked]').textContent,
      error: col.querySelector('[data-testid=error]').textContent,
      items,
      differs: q(col, '[data-testid=line][data-differs=true]').map((tr) => tr.dataset.sku),
      missing: q(col, '[data-testid=missing]').map((tr) => tr.dataset.sku),
      members,
    };
  }
  const links = {};
  for (const tr of q(document, '[data-testid=link]')) links[`${tr.dataset.a}-${tr.dataset.b}`] = tr.dataset.state;
  const conv = document.getElementById('convergence');
  return {
    node: document.getElementById('node-name').textContent,
    convergence: conv.dataset.state,
    convergenceText: conv.textContent,
    columns,
    links,
    linkError: document.getElementById('link-error').textContent,
    faultNotice: document.getElementById('fault-notice').hidden ? '' : document.getElementById('fault-notice').textContent,
  };
}

const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
const show = (items) => JSON.stringify(items);

async function main() {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'cart-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opt.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1500, height: 1000 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') log(`page console error: ${m.text()}`); });

  let last = null;
  const snap = async () => (last = await page.evaluate(readPage));
  async function waitFor(what, pred, timeout = STEP_TIMEOUT_MS) {
    const end = Date.now() + timeout;
    for (;;) {
      const s = await snap();
      if (pageErrors.length) throw new Fail(`uncaught error in the page: ${pageErrors.join('; ')}`);
      let ok = false;
      try { ok = pred(s); } catch { ok = false; }
      if (ok) return s;
      if (Date.now() > end) throw new Fail(`timed out after ${timeout / 1000} s waiting for: ${what}`);
      await page.waitForTimeout(100);
    }
  }
  const col = (name) => page.locator(`[data-testid=column][data-node="${name}"]`);
  const line = (name, sku) => col(name).locator(`[data-testid=line][data-sku="${sku}"]`);
  const items = (s, name) => s.columns[name].items;

  async function addItem(name, sku, qty) {
    await col(name).getByTestId('add-sku').fill(sku);
    await col(name).getByTestId('add-qty').fill(String(qty));
    await col(name).getByTestId('add').click();
  }
  const linkRow = (a, b) => page.locator(`[data-testid=link][data-a="${a < b ? a : b}"][data-b="${a < b ? b : a}"]`);

  try {
    log(`opening ${opt.url}`);
    await page.goto(opt.url, { waitUntil: 'load' });

    // 1. three reachable replicas that see each other alive
    let s = await waitFor('three reachable columns whose members are all alive', (s) => {
      const cols = Object.values(s.columns);
      return cols.length === 3 && cols.every((c) => c.reachable === 'true' && Object.keys(c.members).length === 2
        && Object.values(c.members).every((st) => st === 'alive'));
    }, 20_000);
    const names = Object.keys(s.columns).sort();
    const n1 = Object.keys(s.columns).find((n) => s.columns[n].self);
    if (!n1) throw new Fail('no column is marked as the page\'s own node');
    const [n2, n3] = names.filter((n) => n !== n1);
    log(`page of ${n1}; columns ${names.join(', ')}; links ${JSON.stringify(s.links)}`);
    if (s.faultNotice) throw new Fail(`the page says fault injection is off: ${s.faultNotice}`);

    // 2. a fresh cart, and a line every replica has observed
    const cart = `e2e-${Date.now().toString(36)}`;
    await page.getByTestId('cart-id').fill(cart);
    await waitFor(`every column shows the empty cart ${cart}`, (s) => Object.values(s.columns).every((c) => c.cart === cart && same(c.items, {}))
      && s.convergence === 'agree');
    await addItem(n1, 'banana', 1);
    await waitFor('banana x1 on every replica', (s) => names.every((n) => same(items(s, n), { banana: 1 })) && s.convergence === 'agree');
    log('banana x1 replicated everywhere; cutting the links of ' + n1);

    // 3. partition n1 from n2 and n3 with the page's buttons
    await linkRow(n1, n2).getByTestId('cut').click();
    await linkRow(n1, n3).getByTestId('cut').click();
    s = await waitFor(`links ${n1}-${n2} and ${n1}-${n3} cut on both ends, ${n2}-${n3} up`, (s) =>
      s.links[[n1, n2].sort().join('-')] === 'cut' && s.links[[n1, n3].sort().join('-')] === 'cut'
      && s.links[[n2, n3].sort().join('-')] === 'ok'
      && s.columns[n1].blocked.includes(n2) && s.columns[n1].blocked.includes(n3)
      && s.columns[n2].blocked.includes(n1) && s.columns[n3].blocked.includes(n1));
    if (s.linkError) throw new Fail(`cutting reported: ${s.linkError}`);
    log(`partitioned: ${JSON.stringify(s.links)}`);

    // 4. concurrent edits on both sides
    await addItem(n1, 'apple', 1);
    await waitFor(`${n1} apple 1`, (s) => items(s, n1).apple === 1);
    await line(n1, 'apple').getByTestId('inc').click();
    await waitFor(`${n1} apple 2 after +1`, (s) => items(s, n1).apple === 2);
    await line(n1, 'banana').getByTestId('remove').click();
    await waitFor(`${n1} without banana`, (s) => same(items(s, n1), { apple: 2 }));

    await addItem(n2, 'apple', 2);
    await waitFor(`${n2} apple 2`, (s) => items(s, n2).apple === 2);
    await line(n2, 'apple').getByTestId('set-qty').fill('3');
    await line(n2, 'apple').getByTestId('set').click();
    await waitFor(`${n2} apple 3 after set`, (s) => items(s, n2).apple === 3);
    await addItem(n2, 'pear', 1);
    log('edited both sides');

    // 5. the sides differ, and stay apart while partitioned
    const minority = { apple: 2 };
    const majority = { apple: 3, banana: 1, pear: 1 };
    const partitioned = (s) => same(items(s, n1), minority) && same(items(s, n2), majority) && same(items(s, n3), majority);
    s = await waitFor(`${n1} ${show(minority)}, ${n2} = ${n3} ${show(majority)}, page says they differ`,
      (s) => partitioned(s) && s.convergence === 'differ');
    const hl = s.columns[n1];
    if (!hl.differs.includes('apple') || !hl.missing.includes('pear') || !hl.missing.includes('banana')) {
      throw new Fail(`${n1}'s column does not mark its differences: differs ${show(hl.differs)}, missing ${show(hl.missing)}`);
    }
    if (!s.columns[n2].differs.includes('apple')) throw new Fail(`${n2}'s apple line is not marked as differing`);
    log(`partitioned views: ${s.convergenceText}`);
    await page.waitForTimeout(1500); // 15 gossip rounds
    s = await snap();
    if (!partitioned(s)) throw new Fail(`the partition leaked: ${JSON.stringify(Object.fromEntries(names.map((n) => [n, items(s, n)])))}`);
    const n1View = s.columns[n1].members;
    log(`${n1} sees ${JSON.stringify(n1View)} after 1.5 s partitioned`);

    // 5b. delete pear on n1, which never received it, as n2 shows it
    await col(n1).locator('[data-testid=missing][data-sku="pear"]').getByTestId('remove-seen').click();
    await page.waitForTimeout(600);
    s = await snap();
    if (s.columns[n1].error) throw new Fail(`deleting pear on ${n1} as ${n2} shows it failed: ${s.columns[n1].error}`);
    if (!partitioned(s)) throw new Fail(`the delete on ${n1} crossed the cut: ${JSON.stringify(Object.fromEntries(names.map((n) => [n, items(s, n)])))}`);
    log(`deleted pear on ${n1} (which never had it) with ${n2}'s context`);

    // 6. heal, and converge on the merged cart
    await page.getByTestId('heal-all').click();
    await waitFor('every link up again', (s) => Object.values(s.links).length === 3 && Object.values(s.links).every((st) => st === 'ok'));
    const expected = { apple: 5 };
    const healedAt = Date.now();
    try {
      s = await waitFor(`every column shows ${show(expected)} and the page says all agree`,
        (s) => names.every((n) => same(items(s, n), expected)) && s.convergence === 'agree' && names.every((n) => !s.columns[n].differs.length && !s.columns[n].missing.length),
        CONVERGE_TIMEOUT_MS);
    } catch (e) {
      if (last && last.convergence === 'agree') throw new Fail(`the replicas agree on ${show(items(last, n1))}, expected ${show(expected)}`);
      throw e;
    }
    log(`converged ${((Date.now() - healedAt) / 1000).toFixed(1)} s after healing: ${s.convergenceText}`);

    // the API says the same as the page
    const cluster = await (await fetch(new URL('/cluster', opt.url))).json();
    for (const m of [{ name: cluster.node, http: cluster.http }, ...cluster.members]) {
      const body = await (await fetch(`http://${m.http}/carts/${cart}`)).json();
      const got = Object.fromEntries(body.items.map((i) => [i.sku, i.quantity]));
      if (!same(got, expected)) throw new Fail(`GET /carts/${cart} on ${m.name} answers ${show(got)}, expected ${show(expected)}`);
    }
    await page.screenshot({ path: opt.screenshot, fullPage: true });
    log(`screenshot saved to ${opt.screenshot}`);

    // 7. empty the cart from n3's column: observed remove of everything, everywhere
    await col(n3).getByTestId('empty').click();
    await waitFor('the cart empty on every replica', (s) => names.every((n) => same(items(s, n), {})) && s.convergence === 'agree', CONVERGE_TIMEOUT_MS);
    for (const n of names) if (last.columns[n].error) throw new Fail(`${n}'s column shows an error: ${last.columns[n].error}`);
    log('emptied everywhere');
    console.log(`PASS cart page end-to-end (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return 0;
  } catch (e) {
    console.error(`FAIL: ${e instanceof Fail ? e.message : e.stack || e}`);
    if (last) console.error(`last state of the page: ${JSON.stringify(last, null, 1)}`);
    await page.screenshot({ path: opt.screenshot, fullPage: true }).then(
      () => console.error(`screenshot of the failure saved to ${opt.screenshot}`), () => {});
    return 1;
  } finally {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

process.exit(await main().catch((e) => { console.error(`FAIL: ${e.stack || e}`); return 1; }));
