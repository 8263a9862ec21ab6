"""An IDE built on the official MCP Python SDK (`mcp`), driving `mcp-bridge serve`
over stdio, for tests/clients.rs.

    .venv/bin/python py_client.py <mode>
      mode: "legacy"      Client(mode="legacy"): the initialize handshake
            "auto"        Client(mode="auto"), the SDK's default: probe `server/discover`,
                          fall back to initialize
            "2026-07-28"  Client(mode="2026-07-28"): adopt 2026-07-28 directly, no probe

Environment: BRIDGE_BIN (the binary), BRIDGE_ENV (JSON object: the bridge's whole
environment, e.g. MCP_BRIDGE_HOME and HOME of an empty temp home), CALLS (JSON array
of {name, arguments}: tools to call), TIMEOUT_MS (per request), TRACEPARENT (a W3C
traceparent made the current OpenTelemetry context for the whole run: the SDK puts
it in every request's `_meta`, SEP-414).

It connects and at once lists tools, calls each tool of CALLS, lists and reads every
resource, lists and gets every prompt (argument `who`), and prints one JSON summary
line on stdout. Every step is caught and reported on its own, so one failure does
not hide the others. The bridge's stderr goes to ours.

Login mode (LOGIN_CALL set, a tool name; for tests/interop.rs): an IDE that opens
login links, as ts_client.mjs's login mode (same lines, same fields). Its
elicitation callback (which makes the SDK declare URL-mode elicitation) "opens" a
URL link by fetching it with redirects followed (127.0.0.1 only; any other link is
declined), after first making a second call of LOGIN_CALL and waiting for its
first progress notification when the protocol is 2025-11-25; then it accepts.
Prints {"event":"ready","tools":[...]}, waits for a line on stdin, calls
LOGIN_CALL until one succeeds after a link was opened (bounded by
LOGIN_DEADLINE_MS), waits (bounded) for `notifications/elicitation/complete`, and
prints {"event":"done",...}.
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
    if os.environ.get("TRACEPARENT"):
        # The IDE's own span, as an instrumented IDE would have: with the
        # OpenTelemetry API alone (no SDK), the SDK's client span passes this
        # context through, and its inject writes it into `_meta`.
        from opentelemetry import context, propagate

        context.attach(propagate.extract({"traceparent": os.environ["TRACEPARENT"]}))
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




def print_line(v):
    sys.stdout.write(json.dumps(v) + "\n")
    sys.stdout.flush()


def open_link(url: str) -> dict:
    """Fetch `url` following redirects, without any proxy; loopback only."""
    import urllib.parse
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=20) as r:
        final = r.geturl()
        return {
            "status": r.status,
            "finalUrl": final,
            "loopbackOnly": urllib.parse.urlsplit(final).hostname == "127.0.0.1",
            "body": r.read(2000).decode("utf-8", "replace")[:500],
        }


async def login_main(call_name: str):
    import urllib.parse

    from mcp import types

    deadline = time.monotonic() + float(os.environ.get("LOGIN_DEADLINE_MS", "60000")) / 1000
    out = {"event": "done", "sdk": summary["sdk"], "mode": MODE, "elicitations": [], "visits": [], "completes": [], "attempts": []}
    completed = asyncio.Event()
    linked = asyncio.Event()
    go_at = time.monotonic()
    client = None
    pending_task = None

    def ms(t):
        return int((t - go_at) * 1000)

    async def call(progress=None):
        return await client.call_tool(call_name, {}, progress_callback=progress)

    async def on_elicit(_ctx, params):
        seen = {"at": ms(time.monotonic()), "mode": getattr(params, "mode", None), "url": getattr(params, "url", None)}
        seen["elicitationId"] = getattr(params, "elicitation_id", None)
        seen["message"] = params.message
        out["elicitations"].append(seen)
        linked.set()
        if seen["mode"] != "url":
            return types.ElicitResult(action="decline")
        host = urllib.parse.urlsplit(seen["url"]).hostname
        if host != "127.0.0.1":
            seen["refused"] = f"not a loopback link: {host}"
            return types.ElicitResult(action="decline")
        nonlocal pending_task
        if client.protocol_version != "2026-07-28":
            # A call made while the login is pending: it says it waits, and
            # completes once the login has.
            pending = {"progress": []}
            out["pending"] = pending
            progressed = asyncio.Event()

            async def on_progress(_p, _t, message):
                pending["progress"].append(message)
                progressed.set()

            async def run():
                try:
                    pending["result"] = dump(await call(on_progress))
                except Exception as e:  # noqa: BLE001
                    pending["error"] = err_text(e)

            pending_task = asyncio.create_task(run())
            try:
                await asyncio.wait_for(progressed.wait(), 10)
            except TimeoutError:
                pass
        visit = {"url": seen["url"]}
        out["visits"].append(visit)
        try:
            visit.update(await asyncio.to_thread(open_link, seen["url"]))
        except Exception as e:  # noqa: BLE001
            visit["error"] = err_text(e)
        return types.ElicitResult(action="accept")

    async def on_message(message):
        if isinstance(message, types.ElicitCompleteNotification):
            out["completes"].append(message.params.elicitation_id)
            completed.set()

    params = StdioServerParameters(
        command=os.environ["BRIDGE_BIN"], args=["serve"], env=json.loads(os.environ.get("BRIDGE_ENV", "{}"))
    )
    client = Client(
        params,
        mode=MODE,
        read_timeout_seconds=TIMEOUT,
        cache=None,
        elicitation_callback=on_elicit,
        message_handler=on_message,
    )
    try:
        await asyncio.wait_for(client.__aenter__(), TIMEOUT)
        try:
            tools = await asyncio.wait_for(client.list_tools(), TIMEOUT)
            print_line({"event": "ready", "tools": [t.name for t in tools.tools]})
            # The test revokes the login, then says go.
            await asyncio.to_thread(sys.stdin.readline)
            go_at = time.monotonic()
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                visits = len(out["visits"])
                progress = []

                async def on_progress(_p, _t, message, progress=progress):
                    progress.append(message)

                r = None
                try:
                    r = await asyncio.wait_for(call(on_progress), TIMEOUT)
                    out["attempts"].append(
                        {"at": ms(t0), "ms": int((time.monotonic() - t0) * 1000), "progress": progress, "isError": bool(r.is_error), "result": dump(r)}
                    )
                except Exception as e:  # noqa: BLE001
                    out["attempts"].append({"at": ms(t0), "ms": int((time.monotonic() - t0) * 1000), "progress": progress, "error": err_text(e)})
                if r is not None and not r.is_error and out["visits"]:
                    out["final"] = dump(r)
                    break
                # See ts_client.mjs: wait for the call made while the login
                # was pending before calling again.
                if pending_task is not None:
                    await pending_task
                if len(out["visits"]) == visits:
                    # Paces calls that fail before the bridge notices the
                    # revocation; a link arriving ends the pause at once.
                    linked.clear()
                    try:
                        await asyncio.wait_for(linked.wait(), 0.3)
                    except TimeoutError:
                        pass
            if pending_task is not None:
                await pending_task
            if client.protocol_version != "2026-07-28" and any(e.get("elicitationId") for e in out["elicitations"]):
                try:
                    await asyncio.wait_for(completed.wait(), 10)
                except TimeoutError:
                    pass
        finally:
            try:
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)
            except BaseException:  # noqa: BLE001 - closing is not under test
                pass
    except Exception as e:  # noqa: BLE001
        out["error"] = err_text(e)
    print_line(out)


if os.environ.get("LOGIN_CALL"):
    asyncio.run(login_main(os.environ["LOGIN_CALL"]))
else:
    try:
        asyncio.run(main())
    finally:
        sys.stdout.write(json.dumps(summary) + "\n")
        sys.stdout.flush()
