#!/usr/bin/env node
// The "IDE" that the MCP conformance suite launches as its client under test.
//
// The conformance runner starts a test server per scenario and runs
//   adapter.mjs <server-url>
// with MCP_CONFORMANCE_SCENARIO (and, for some scenarios, MCP_CONFORMANCE_CONTEXT)
// in the environment. The client really under test is the bridge: this script
// spawns `mcp-bridge serve <server-url>` in a fresh, empty home (no config, no
// catalog cache, no login, file credential store) and talks to it over stdio as an
// IDE does: it initializes, then at once lists the tools and calls the tools the
// scenario's server expects, without waiting for the list first. Logins that the
// bridge starts are completed by browser.mjs (set as $BROWSER), which follows the
// authorization server's redirect back to the bridge's loopback callback.
//
// Exits non-zero when the IDE would have seen something wrong: a first tools/list
// that lacks a tool the server offers, a call that fails, or an unexpected error.
// The suite's own checks judge the wire between the bridge and the server.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema
} from '@modelcontextprotocol/sdk/types.js';

const here = dirname(fileURLToPath(import.meta.url));
const serverUrl = process.argv[process.argv.length - 1];
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '';
const context = process.env.MCP_CONFORMANCE_CONTEXT
  ? JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT)
  : {};
const bridgeBin =
  process.env.MCP_BRIDGE_BIN ?? resolve(here, '../../target/debug/mcp-bridge');
// Longer than the bridge's ready_wait (15 s), shorter than the suite's timeout.
const REQUEST_TIMEOUT_MS = 25_000;

const log = (...args) => console.error('[ide]', ...args);

// What the IDE does per scenario: `calls` go out together with the first
// tools/list and must be in it, as must `expect`; `callListed` calls every listed
// tool too (after the list); `everything` also reads every resource and gets every
// prompt; `listOnly` does no call; `custom` replaces the generic flow.
const AUTH_CALL = { calls: [{ name: 'test-tool', arguments: {} }] };
const PLAN = {
  initialize: { listOnly: true },
  tools_call: { calls: [{ name: 'add_numbers', arguments: { a: 2, b: 3 } }] },
  'elicitation-sep1034-client-defaults': {
    calls: [{ name: 'test_client_elicitation_defaults', arguments: {} }]
  },
  'sse-retry': { calls: [{ name: 'test_reconnection', arguments: {} }] },
  'request-metadata': { listOnly: true },
  'sep-2322-client-request-state': {
    calls: [
      'test_mrtr_echo_state',
      'test_mrtr_no_state',
      'test_mrtr_unrelated',
      'test_mrtr_no_result_type'
    ].map((name) => ({ name, arguments: {} }))
  },
  'http-standard-headers': {
    expect: ['test_headers', 'my-hyphenated-tool'],
    callListed: true,
    everything: true
  },
  'http-custom-headers': {
    calls: (context.toolCalls ?? []).map((c) => ({
      name: c.name,
      arguments: c.arguments
    }))
  },
  'http-invalid-tool-headers': {
    calls: [{ name: 'valid_tool', arguments: {} }],
    callListed: true
  },
  'json-schema-ref-no-deref': { listOnly: true },
  'json-schema-2020-12-preservation': { custom: schemaEcho }
};

// Scenarios whose server or authorization server misbehaves on purpose: the
// bridge must refuse the login, so the IDE's call fails. It must fail because of
// that, naming the server (README: a call to a down server fails with an error
// naming the server and URL), not with a bare "unknown tool" answered before the
// bridge tried.
const REFUSED = new Set([
  'auth/iss-supported-missing',
  'auth/iss-wrong-issuer',
  'auth/iss-unexpected',
  'auth/iss-normalized',
  'auth/metadata-issuer-mismatch',
  'auth/resource-mismatch',
  'auth/scope-retry-limit'
]);

function planFor(name) {
  if (PLAN[name]) return PLAN[name];
  if (REFUSED.has(name)) return { ...AUTH_CALL, refused: true };
  if (name.startsWith('auth/')) return AUTH_CALL;
  throw new Error(`no IDE plan for scenario '${name}'; add one to adapter.mjs`);
}

// An IDE shows an elicitation as a form pre-filled with the schema's defaults and
// the user accepts it: the answer carries every field, defaults included.
function filledForm(schema) {
  const content = {};
  for (const [key, prop] of Object.entries(schema?.properties ?? {})) {
    if (prop.default !== undefined) content[key] = prop.default;
    else if (prop.type === 'boolean') content[key] = true;
    else if (prop.type === 'number' || prop.type === 'integer') content[key] = 1;
    else if (Array.isArray(prop.enum)) content[key] = prop.enum[0];
    else if (prop.type === 'string') content[key] = 'ok';
  }
  return content;
}

// ---- enterprise-managed authorization (SEP-990) ---------------------------
// The scenario auth/enterprise-managed-authorization hands the client its IdP
// (issuer, the bridge's client id there) and a pre-issued ID token, as an
// administrator's setup and an earlier `mcp-bridge login --idp` would; its
// client_id and client_secret are the bridge's at the server's authorization
// server (--client-id and MCP_BRIDGE_CLIENT_SECRET, as for the other auth
// scenarios).
function enterpriseArgs() {
  if (!context.idp_issuer) return [];
  return ['--idp-issuer', context.idp_issuer, '--idp-client-id', context.idp_client_id];
}

function enterpriseEnv(env) {
  if (context.idp_id_token) env.MCP_BRIDGE_IDP_ID_TOKEN = context.idp_id_token;
}
// ---- end of enterprise-managed authorization ------------------------------

function bridgeEnv(home) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('MCP_BRIDGE_') || k.startsWith('XDG_')) delete env[k];
  }
  delete env.MCP_CONFORMANCE_CONTEXT;
  Object.assign(env, {
    HOME: home,
    MCP_BRIDGE_HOME: join(home, 'mcp-bridge'),
    MCP_BRIDGE_CREDENTIAL_STORE: 'file',
    BROWSER: `${process.execPath} ${join(here, 'browser.mjs')}`,
    RUST_LOG: process.env.RUST_LOG ?? 'mcp_bridge=debug'
  });
  if (context.client_secret) env.MCP_BRIDGE_CLIENT_SECRET = context.client_secret;
  enterpriseEnv(env);
  return env;
}

// The suite's authorization servers accept this one Client ID Metadata Document
// URL (auth/basic-cimd checks that the client uses it when the server advertises
// CIMD). It stands for the bridge's own published document; a bridge uses it only
// where the authorization server supports CIMD, and registers dynamically
// elsewhere.
const CIMD_URL = 'https://conformance-test.local/client-metadata.json';
const CIMD_FLAG = '--client-metadata-url';

function bridgeArgs() {
  const args = ['serve', serverUrl];
  if (context.client_id) args.push('--client-id', context.client_id);
  else if (scenario.startsWith('auth/')) args.push(CIMD_FLAG, CIMD_URL);
  args.push(...enterpriseArgs());
  return args;
}

const failures = [];
const fail = (msg) => {
  failures.push(msg);
  log('FAIL:', msg);
};

async function call(client, name, args, refused = false) {
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, {
      timeout: REQUEST_TIMEOUT_MS
    });
    if (refused) {
      fail(`tools/call ${name} succeeded; the bridge should have refused this server's login`);
    } else if (result.isError) {
      fail(`tools/call ${name}: tool error: ${JSON.stringify(result.content)}`);
    } else {
      log(`tools/call ${name}: ok`);
    }
    return result;
  } catch (e) {
    const host = new URL(serverUrl).host;
    const named = e.message.includes(host) || JSON.stringify(e.data ?? {}).includes(host);
    if (refused && named) log(`tools/call ${name}: refused as expected: ${e.message}`);
    else if (refused) fail(`tools/call ${name}: '${e.message}' does not name the server that refused`);
    else fail(`tools/call ${name}: ${e.message}`);
    return undefined;
  }
}

async function listTools(client) {
  try {
    const { tools } = await client.listTools(undefined, { timeout: REQUEST_TIMEOUT_MS });
    log(`first tools/list: [${tools.map((t) => t.name).join(', ')}]`);
    return tools;
  } catch (e) {
    fail(`tools/list: ${e.message}`);
    return [];
  }
}

function expectListed(tools, names) {
  const listed = new Set(tools.map((t) => t.name));
  for (const n of names) {
    if (!listed.has(n)) fail(`first tools/list lacks '${n}' (the server offers it)`);
  }
}

// Diagnosis only (run.sh --patient): wait until the bridge lists the tools the
// scenario needs before the usual flow, to see what fails beneath an early empty
// list. Not how an IDE behaves, so never the default.
async function waitForTools(client, plan) {
  const want = [...(plan.calls ?? []).map((c) => c.name), ...(plan.expect ?? [])];
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { tools } = await client.listTools().catch(() => ({ tools: [] }));
    const names = new Set(tools.map((t) => t.name));
    if (tools.length > 0 && want.every((n) => names.has(n))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  log('patient: the tools never showed up');
}

async function schemaEcho(client) {
  const tools = await listTools(client);
  const focal = tools.find((t) => t.name === 'json_schema_2020_12_tool');
  expectListed(tools, ['json_schema_2020_12_tool', 'json_schema_echo']);
  if (focal) await call(client, 'json_schema_echo', { schema: focal.inputSchema });
}

// Everything an IDE may touch: resources read, prompts fetched, tools called.
async function everything(client) {
  const caps = client.getServerCapabilities() ?? {};
  const jobs = [];
  if (caps.resources) {
    jobs.push(
      client.listResources().then(({ resources }) =>
        Promise.all(
          resources.map((r) =>
            client
              .readResource({ uri: r.uri })
              .then(() => log(`resources/read ${r.uri}: ok`))
              .catch((e) => fail(`resources/read ${r.uri}: ${e.message}`))
          )
        )
      )
    );
  }
  if (caps.prompts) {
    jobs.push(
      client.listPrompts().then(({ prompts }) =>
        Promise.all(
          prompts.map((p) => {
            const args = Object.fromEntries(
              (p.arguments ?? []).map((a) => [a.name, 'value'])
            );
            return client
              .getPrompt({ name: p.name, arguments: args })
              .then(() => log(`prompts/get ${p.name}: ok`))
              .catch((e) => fail(`prompts/get ${p.name}: ${e.message}`));
          })
        )
      )
    );
  }
  await Promise.all(jobs);
}

async function main() {
  const plan = planFor(scenario);
  const home = mkdtempSync(join(tmpdir(), 'mcp-bridge-conformance-'));
  const client = new Client(
    { name: 'conformance-ide', version: '1.0.0' },
    { capabilities: { elicitation: { form: {} }, sampling: {}, roots: { listChanged: true } } }
  );
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    const content = filledForm(req.params.requestedSchema);
    log(`elicitation: accept ${JSON.stringify(content)}`);
    return { action: 'accept', content };
  });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: 'assistant',
    content: { type: 'text', text: 'ok' },
    model: 'conformance-ide',
    stopReason: 'endTurn'
  }));
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [] }));

  const transport = new StdioClientTransport({
    command: bridgeBin,
    args: bridgeArgs(),
    env: bridgeEnv(home),
    stderr: 'inherit'
  });
  try {
    await client.connect(transport);
    log(`initialized; bridge is ${JSON.stringify(client.getServerVersion())}`);
    if (process.env.CONFORMANCE_IDE_PATIENT === '1') await waitForTools(client, plan);
    if (plan.custom) {
      await plan.custom(client);
    } else {
      const calls = plan.calls ?? [];
      // At once, as IDEs do: the list and the calls without waiting in between.
      const [tools] = await Promise.all([
        listTools(client),
        ...calls.map((c) => call(client, c.name, c.arguments, plan.refused))
      ]);
      if (!plan.refused) {
        expectListed(tools, [...calls.map((c) => c.name), ...(plan.expect ?? [])]);
      }
      const extra = [];
      if (plan.callListed) {
        const done = new Set(calls.map((c) => c.name));
        for (const t of tools) if (!done.has(t.name)) extra.push(call(client, t.name, {}));
      }
      if (plan.everything) extra.push(everything(client));
      await Promise.all(extra);
    }
  } catch (e) {
    fail(`unexpected: ${e.stack ?? e}`);
  } finally {
    await client.close().catch(() => {});
    rmSync(home, { recursive: true, force: true });
  }
  // The suite ignores the client's exit code in the scenarios where it expects a
  // client to fail, so the verdict also goes to a file for run.sh.
  if (process.env.CONFORMANCE_IDE_REPORT) {
    writeFileSync(process.env.CONFORMANCE_IDE_REPORT, failures.length ? failures.join('\n') + '\n' : 'ok\n');
  }
  if (failures.length > 0) {
    log(`${failures.length} problem(s) seen by the IDE`);
    process.exit(1);
  }
}

await main();
