// An IDE built on the official TypeScript MCP SDK, driving `mcp-bridge serve`
// over stdio, for tests/clients.rs.
//
//   node ts_client.mjs <sdk> <mode>
//     sdk:  "v1"  @modelcontextprotocol/sdk (1.x; speaks 2025-11-25 and older only)
//           "v2"  @modelcontextprotocol/client (2.x; both protocol generations)
//     mode: "legacy"      initialize handshake (v1 always; v2 versionNegotiation.mode "legacy")
//           "auto"        v2 only: probe `server/discover`, fall back to initialize
//           "2026-07-28"  v2 only: versionNegotiation.mode { pin: "2026-07-28" }
//
// Environment: BRIDGE_BIN (the binary), BRIDGE_ENV (JSON object: the bridge's
// environment, e.g. MCP_BRIDGE_HOME and HOME of an empty temp home), CALLS (JSON
// array of {name, arguments}: tools to call), TIMEOUT_MS (per request).
//
// It connects and at once lists tools, calls each tool of CALLS, lists and reads
// every resource, lists and gets every prompt (argument `who`), and prints one
// JSON summary line on stdout. Every step is caught and reported on its own, so
// one failure does not hide the others. The bridge's stderr goes to ours.
//
// Login mode (LOGIN_CALL set, a tool name; for tests/interop.rs): an IDE that
// opens login links. It declares URL-mode elicitation; its elicitation handler
// "opens" a URL link by fetching it with redirects followed (127.0.0.1 links
// only; any other is declined) and accepts. With the v1 SDK the handler first
// makes a second call of LOGIN_CALL and waits for its first progress
// notification (the call made while the login is pending), then opens the
// link. It connects, lists tools, prints {"event":"ready","tools":[…]}, waits
// for one line on stdin (the test revokes the login meanwhile), then calls
// LOGIN_CALL until a call succeeds after a link was opened (bounded by
// LOGIN_DEADLINE_MS), waits (bounded) for `notifications/elicitation/complete`
// where the protocol has it, and prints {"event":"done",…}: every elicitation,
// link visit, completion, attempt, the pending call and the final result.

const [sdk, mode] = process.argv.slice(2);
const bin = process.env.BRIDGE_BIN;
const bridgeEnv = JSON.parse(process.env.BRIDGE_ENV || "{}");
const calls = JSON.parse(process.env.CALLS || "[]");
const timeout = Number(process.env.TIMEOUT_MS || 20000);

let Client, StdioClientTransport, pkg;
if (sdk === "v1") {
  ({ Client } = await import("@modelcontextprotocol/sdk/client/index.js"));
  ({ StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js"));
  pkg = "@modelcontextprotocol/sdk";
} else if (sdk === "v2") {
  ({ Client } = await import("@modelcontextprotocol/client"));
  ({ StdioClientTransport } = await import("@modelcontextprotocol/client/stdio"));
  pkg = "@modelcontextprotocol/client";
} else {
  throw new Error(`unknown sdk ${sdk}`);
}
const { readFileSync } = await import("node:fs");
const pkgJson = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
const version = JSON.parse(readFileSync(pkgJson, "utf8")).version;

const loginCall = process.env.LOGIN_CALL;
// No sampling, elicitation or roots: none of the steps needs them (login mode
// declares URL-mode elicitation only).
const options = { capabilities: loginCall ? { elicitation: { url: {} } } : {} };
if (sdk === "v2") {
  options.versionNegotiation = { mode: mode === "2026-07-28" ? { pin: mode } : mode };
} else if (mode !== "legacy") {
  throw new Error("the v1 SDK has only the legacy mode");
}

const summary = { sdk: `${pkg}@${version}`, mode, steps: [] };
const errText = (e) => {
  const parts = [String(e && e.message ? e.message : e)];
  if (e && e.code !== undefined) parts.push(`code=${e.code}`);
  if (e && e.data !== undefined) parts.push(`data=${JSON.stringify(e.data)}`);
  if (e && e.cause) parts.push(`cause=${e.cause.message || e.cause}`);
  return parts.join(" ");
};
async function step(kind, target, f) {
  const t0 = Date.now();
  try {
    const result = await f();
    summary.steps.push({ kind, target, ok: true, ms: Date.now() - t0, result });
    return result;
  } catch (e) {
    summary.steps.push({ kind, target, ok: false, ms: Date.now() - t0, error: errText(e) });
    return undefined;
  }
}

const client = new Client({ name: `interop-ts-${sdk}`, version: "1.0.0" }, options);
const transport = new StdioClientTransport({ command: bin, args: ["serve"], env: bridgeEnv, stderr: "inherit" });
const opts = { timeout };
// v1 has no getter for the negotiated version; it hands it to the transport.
let negotiated = null;
if (sdk === "v1") {
  transport.setProtocolVersion = (v) => {
    negotiated = v;
  };
}

if (loginCall) {
  await loginMode();
  process.exit(0);
}

const connected = await step("connect", "", async () => {
  await client.connect(transport, opts);
  return {
    protocolVersion: client.getNegotiatedProtocolVersion?.() ?? negotiated,
    era: client.getProtocolEra?.() ?? null,
    serverInfo: client.getServerVersion?.() ?? null,
  };
});
if (connected) {
  await step("tools/list", "", () => client.listTools(undefined, opts));
  for (const c of calls) {
    await step("tools/call", c.name, () =>
      sdk === "v1"
        ? client.callTool({ name: c.name, arguments: c.arguments }, undefined, opts)
        : client.callTool({ name: c.name, arguments: c.arguments }, opts),
    );
  }
  const resources = await step("resources/list", "", () => client.listResources(undefined, opts));
  for (const r of resources?.resources ?? []) {
    await step("resources/read", r.uri, () => client.readResource({ uri: r.uri }, opts));
  }
  const prompts = await step("prompts/list", "", () => client.listPrompts(undefined, opts));
  for (const p of prompts?.prompts ?? []) {
    await step("prompts/get", p.name, () => client.getPrompt({ name: p.name, arguments: { who: "interop" } }, opts));
  }
}
await client.close().catch(() => {});
process.stdout.write(JSON.stringify(summary) + "\n");
process.exit(0);

// Login mode: see the head comment.
async function loginMode() {
  const deadline = Date.now() + Number(process.env.LOGIN_DEADLINE_MS || 60000);
  const out = { event: "done", sdk: `${pkg}@${version}`, mode, elicitations: [], visits: [], completes: [], attempts: [] };
  const print = (v) => process.stdout.write(JSON.stringify(v) + "\n");
  const call = (o = {}) =>
    sdk === "v1"
      ? client.callTool({ name: loginCall, arguments: {} }, undefined, { ...opts, ...o })
      : client.callTool({ name: loginCall, arguments: {} }, { ...opts, ...o });
  // Times ("at") are ms since the go line.
  let goAt = Date.now();
  // Wakes the retry loop early when a link arrives.
  let wake = () => {};
  let completed = () => {};
  const completion = new Promise((r) => (completed = r));

  const onElicit = async (params) => {
    const seen = { at: Date.now() - goAt, mode: params.mode, url: params.url, elicitationId: params.elicitationId, message: params.message };
    out.elicitations.push(seen);
    wake();
    if (params.mode !== "url") return { action: "decline" };
    let target;
    try {
      target = new URL(params.url);
    } catch {
      seen.refused = "not a URL";
      return { action: "decline" };
    }
    if (target.hostname !== "127.0.0.1") {
      seen.refused = `not a loopback link: ${target.hostname}`;
      return { action: "decline" };
    }
    if (sdk === "v1") {
      // A call made while the login is pending: it says it waits (progress),
      // and completes once the login has.
      const pending = { progress: [] };
      out.pending = pending;
      let progressed = () => {};
      const firstProgress = new Promise((r) => (progressed = r));
      pending.done = call({
        onprogress: (p) => {
          pending.progress.push(p.message ?? null);
          progressed();
        },
        resetTimeoutOnProgress: true,
      }).then(
        (r) => (pending.result = r),
        (e) => (pending.error = errText(e)),
      );
      await Promise.race([firstProgress, pending.done, new Promise((r) => setTimeout(r, 10000))]);
    }
    // "Open" the link: the authorization server redirects to the bridge's
    // loopback callback. Only loopback is ever followed.
    const visit = { url: params.url };
    out.visits.push(visit);
    try {
      const r = await fetch(params.url, { redirect: "follow", signal: AbortSignal.timeout(20000) });
      visit.status = r.status;
      visit.finalUrl = r.url;
      visit.loopbackOnly = new URL(r.url).hostname === "127.0.0.1";
      visit.body = (await r.text()).slice(0, 500);
    } catch (e) {
      visit.error = errText(e);
    }
    return { action: "accept" };
  };

  if (sdk === "v1") {
    const { ElicitRequestSchema, ElicitationCompleteNotificationSchema } = await import(
      "@modelcontextprotocol/sdk/types.js"
    );
    client.setRequestHandler(ElicitRequestSchema, (req) => onElicit(req.params));
    client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
      out.completes.push(n.params.elicitationId);
      completed();
    });
  } else {
    client.setRequestHandler("elicitation/create", (req) => onElicit(req.params));
    client.setNotificationHandler("notifications/elicitation/complete", (n) => {
      out.completes.push(n.params.elicitationId);
      completed();
    });
  }

  try {
    await client.connect(transport, opts);
    const tools = await client.listTools(undefined, opts);
    print({ event: "ready", tools: tools.tools.map((t) => t.name) });
    // The test revokes the login, then says go.
    const { createInterface } = await import("node:readline");
    const rl = createInterface({ input: process.stdin });
    await new Promise((r) => rl.once("line", r));
    rl.close();
    goAt = Date.now();

    while (Date.now() < deadline) {
      const t0 = Date.now();
      const linked = out.visits.length;
      let r;
      const progress = [];
      const onprogress = (p) => progress.push(p.message ?? null);
      try {
        r = await call({ onprogress, resetTimeoutOnProgress: true });
        out.attempts.push({ at: t0 - goAt, ms: Date.now() - t0, progress, isError: r.isError ?? false, result: r });
      } catch (e) {
        out.attempts.push({ at: t0 - goAt, ms: Date.now() - t0, progress, error: errText(e) });
      }
      if (r && !r.isError && out.visits.length > 0) {
        out.final = r;
        break;
      }
      // Once the link is opened, the next call waits for the call made
      // while the login was pending: a call sent between the login's end and
      // the bridge's reconnection may otherwise wait for a login round that
      // never starts (a bridge race this test works around and reports).
      if (out.pending?.done) await out.pending.done;
      // Paces calls that fail before the bridge notices the revocation; a
      // link arriving ends the pause at once.
      if (out.visits.length === linked) {
        await new Promise((res) => {
          wake = res;
          setTimeout(res, 300);
        });
      }
    }
    if (out.pending?.done) await out.pending.done;
    if (sdk === "v1" && out.elicitations.some((e) => e.elicitationId)) {
      await Promise.race([completion, new Promise((r) => setTimeout(r, 10000))]);
    }
    if (out.pending) delete out.pending.done;
  } catch (e) {
    out.error = errText(e);
  }
  await client.close().catch(() => {});
  print(out);
}
