#!/usr/bin/env python3
"""Drive `EXE serve` as an IDE would, in front of N tiny local Streamable HTTP MCP
servers: initialize, list until every upstream is listed, make CALLS calls, then
print the memory lines of /proc/PID/status (and the whole smaps to $SMAPS if set).
Usage: drive.py EXE N [CALLS [ENV=VALUE...]]"""
import json, os, subprocess, sys, tempfile, threading, time, select
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def _send(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        if body: self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body: self.wfile.write(body)
    def do_GET(self): self._send(405)
    def do_DELETE(self): self._send(200)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        msg = json.loads(self.rfile.read(n))
        if "id" not in msg:
            return self._send(202)
        m = msg["method"]
        if m == "initialize":
            res = {"protocolVersion": msg["params"]["protocolVersion"] if msg["params"]["protocolVersion"] <= "2025-11-25" else "2025-11-25",
                   "capabilities": {"tools": {"listChanged": False}}, "serverInfo": {"name": "py", "version": "1"}}
        elif m == "tools/list":
            res = {"tools": [{"name": "echo", "description": "Echo text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}]}
        elif m == "tools/call":
            res = {"content": [{"type": "text", "text": msg["params"]["arguments"].get("text", "")}]}
        elif m == "ping":
            res = {}
        else:
            return self._send(200, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "nope"}}).encode())
        self._send(200, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": res}).encode())

def main():
    exe = sys.argv[1]; n = int(sys.argv[2]); calls = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    extra_env = dict(a.split("=", 1) for a in sys.argv[4:])
    servers = []
    for i in range(n):
        s = ThreadingHTTPServer(("127.0.0.1", 0), H); s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append((f"m{i:02}", f"http://127.0.0.1:{s.server_address[1]}/mcp"))
    home = tempfile.mkdtemp()
    cfg = "[policy]\nmax_tools = 0\n\n" + "".join(f'[[servers]]\nname = "{a}"\nurl = "{u}"\n\n' for a, u in servers)
    open(os.path.join(home, "config.toml"), "w").write(cfg)
    env = dict(os.environ, MCP_BRIDGE_HOME=home, MCP_BRIDGE_CREDENTIAL_STORE="file"); env.pop("RUST_LOG", None)
    env.update(extra_env)
    p = subprocess.Popen([exe, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    buf = b""
    def send(o): p.stdin.write((json.dumps(o) + "\n").encode()); p.stdin.flush()
    def recv(want_id):
        nonlocal buf
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                o = json.loads(line)
                if o.get("id") == want_id and "method" not in o: return o
            r, _, _ = select.select([p.stdout], [], [], 20)
            if not r: raise SystemExit("timeout")
            d = os.read(p.stdout.fileno(), 65536)
            if not d: raise SystemExit("eof")
            buf += d
    send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "h", "version": "1"}}})
    recv(0)
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    want = {f"{a}__echo" for a, _ in servers} if n > 1 else {"echo"}
    i = 1; t0 = time.time()
    while True:
        send({"jsonrpc": "2.0", "id": i, "method": "tools/list", "params": {}}); r = recv(i); i += 1
        names = {t["name"] for t in r["result"]["tools"]}
        if want <= names: break
        time.sleep(0.02)
    listed = time.time() - t0
    name = sorted(want)[0]
    for k in range(calls):
        send({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": {"text": "hi"}}}); recv(i); i += 1
    st = {l.split(":")[0]: l.split(":")[1].strip() for l in open(f"/proc/{p.pid}/status")}
    print(f"listed in {listed*1000:.1f} ms; " + ", ".join(f"{k} {st[k]}" for k in ["VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"]))
    if os.environ.get("SMAPS"):
        open(os.environ["SMAPS"], "w").write(open(f"/proc/{p.pid}/smaps").read())
    if os.environ.get("HOLD"):
        print("pid", p.pid, flush=True); time.sleep(float(os.environ["HOLD"]))
    p.stdin.close(); p.wait(5)

main()
