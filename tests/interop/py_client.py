"""An IDE built on the official MCP Python SDK (`mcp`), driving `mcp-bridge serve`
over stdio, for tests/clients.rs.

    .venv/bin/python py_client.py <mode>
      mode: "legacy"      Client(mode="legacy"): the initialize handshake
            "auto"        Client(mode="auto"), the SDK's default: probe `server/discover`,
                          fall back to initialize
            "2026-07-28"  Client(mode="2026-07-28"): adopt 2026-07-28 directly, no probe

Environment: BRIDGE_BIN (the binary), BRIDGE_ENV (JSON object: the bridge's whole
environment, e.g. MCP_BRIDGE_HOME and HOME of an empty temp home), CALLS (JSON array
of {name, arguments}: tools to call), TIMEOUT_MS (per request).

It connects and at once lists tools, calls each tool of CALLS, lists and reads every
resource, lists and gets every prompt (argument `who`), and prints one JSON summary
line on stdout. Every step is caught and reported on its own, so one failure does
not hide the others. The bridge's stderr goes to ours.
"""

import asyncio
import importlib.metadata
import json
import os
import sys
import time

from mcp import Client, StdioServerParameters

MODE = sys.argv[1]
TIMEOUT = float(os.environ.get("TIMEOUT_MS", "20000")) / 1000
CALLS = json.loads(os.environ.get("CALLS", "[]"))

summary = {"sdk": f"mcp@{importlib.metadata.version('mcp')}", "mode": MODE, "steps": []}


def dump(v):
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", by_alias=True, exclude_none=True)
    return v


def err_text(e: BaseException) -> str:
    # anyio task groups wrap the real error; show the leaves.
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(err_text(x) for x in e.exceptions)
    text = f"{type(e).__name__}: {e}"
    data = getattr(getattr(e, "error", None), "data", None)
    if data is not None:
        text += f" data={json.dumps(data, default=str)}"
    return text


async def step(kind, target, f):
    t0 = time.monotonic()
    try:
        r = await asyncio.wait_for(f(), TIMEOUT)
        summary["steps"].append(
            {"kind": kind, "target": target, "ok": True, "ms": int((time.monotonic() - t0) * 1000), "result": dump(r)}
        )
        return r
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        summary["steps"].append(
            {"kind": kind, "target": target, "ok": False, "ms": int((time.monotonic() - t0) * 1000), "error": err_text(e)}
        )
        return None


async def main():
    params = StdioServerParameters(
        command=os.environ["BRIDGE_BIN"], args=["serve"], env=json.loads(os.environ.get("BRIDGE_ENV", "{}"))
    )
    client = Client(params, mode=MODE, read_timeout_seconds=TIMEOUT, cache=None)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(client.__aenter__(), TIMEOUT)
    except Exception as e:  # noqa: BLE001
        summary["steps"].append(
            {"kind": "connect", "target": "", "ok": False, "ms": int((time.monotonic() - t0) * 1000), "error": err_text(e)}
        )
        return
    summary["steps"].append(
        {
            "kind": "connect",
            "target": "",
            "ok": True,
            "ms": int((time.monotonic() - t0) * 1000),
            "result": {"protocolVersion": client.protocol_version, "serverInfo": dump(client.server_info)},
        }
    )
    try:
        await step("tools/list", "", lambda: client.list_tools())
        for c in CALLS:
            await step("tools/call", c["name"], lambda c=c: client.call_tool(c["name"], c.get("arguments")))
        resources = await step("resources/list", "", lambda: client.list_resources())
        for r in resources.resources if resources else []:
            await step("resources/read", str(r.uri), lambda r=r: client.read_resource(str(r.uri)))
        prompts = await step("prompts/list", "", lambda: client.list_prompts())
        for p in prompts.prompts if prompts else []:
            await step("prompts/get", p.name, lambda p=p: client.get_prompt(p.name, {"who": "interop"}))
    finally:
        try:
            await asyncio.wait_for(client.__aexit__(None, None, None), 5)
        except BaseException:  # noqa: BLE001 - closing is not under test
            pass


try:
    asyncio.run(main())
finally:
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stdout.flush()
