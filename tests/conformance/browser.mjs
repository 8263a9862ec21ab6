#!/usr/bin/env node
// A non-interactive "browser" for the bridge's OAuth login ($BROWSER): the
// conformance suite's authorization servers approve every authorization request at
// once, so opening the page is a GET that is redirected to the bridge's loopback
// callback. Each redirect is followed by hand (at most 10) so that every hop is
// logged; only loopback addresses are ever fetched.
const url = process.argv[process.argv.length - 1];
const log = (...a) => console.error('[browser]', ...a);

function loopback(u) {
  const h = new URL(u).hostname;
  return h === 'localhost' || h === '[::1]' || h.startsWith('127.');
}

let next = url;
try {
  for (let hop = 0; hop < 10; hop++) {
    if (!loopback(next)) throw new Error(`refusing a non-loopback address: ${next}`);
    const res = await fetch(next, { redirect: 'manual', signal: AbortSignal.timeout(20_000) });
    const location = res.headers.get('location');
    log(`GET ${new URL(next).origin}${new URL(next).pathname} -> ${res.status}`);
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer().catch(() => {});
      next = new URL(location, next).toString();
      continue;
    }
    const body = await res.text();
    if (!res.ok) log(`page: ${body.slice(0, 300)}`);
    process.exit(res.ok ? 0 : 1);
  }
  throw new Error('too many redirects');
} catch (e) {
  log(`failed: ${e.message}`);
  process.exit(1);
}
