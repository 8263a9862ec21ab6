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

// No sampling, elicitation or roots: none of the steps needs them.
const options = { capabilities: {} };
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
