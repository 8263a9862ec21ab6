#!/bin/sh
# Installs the peers that `cargo bench --bench bridge` compares the bridge with,
# pinned, into DIR (default: target/bench-peers under the repository):
#   DIR/node_modules/.bin/mcp-remote   npm package mcp-remote (stdio <-> HTTP, one server)
#   DIR/venv/bin/mcp-proxy             PyPI package mcp-proxy (stdio -> Streamable HTTP)
# Idempotent: a peer whose pinned version is already there is left alone. Each
# peer is installed on its own; a peer that cannot be installed is reported and
# the script goes on, exiting 1 at the end if any failed.
#
# Usage: benches/peers/setup.sh [DIR]
set -eu

MCP_REMOTE_VERSION=0.15.1
MCP_PROXY_VERSION=0.13.0

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/target/bench-peers}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
failed=0

say() {
  echo "benches/peers/setup.sh: $*" >&2
}

# ---- mcp-remote (npm)
remote_pkg=$dir/node_modules/mcp-remote/package.json
remote_have() {
  if [ -f "$remote_pkg" ]; then
    node -p "require('$remote_pkg').version" 2>/dev/null || true
  fi
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "mcp-remote: node and npm are needed (Node.js >= 18)"
  failed=1
elif [ "$(remote_have)" = "$MCP_REMOTE_VERSION" ]; then
  say "mcp-remote $MCP_REMOTE_VERSION already installed in $dir"
else
  say "installing mcp-remote@$MCP_REMOTE_VERSION into $dir"
  if npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    "mcp-remote@$MCP_REMOTE_VERSION" >&2 && [ "$(remote_have)" = "$MCP_REMOTE_VERSION" ]; then
    say "mcp-remote $MCP_REMOTE_VERSION installed"
  else
    say "mcp-remote: npm install failed"
    failed=1
  fi
fi

# ---- mcp-proxy (PyPI)
venv=$dir/venv
proxy_have() {
  if [ -x "$venv/bin/python" ]; then
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp-proxy"))' 2>/dev/null || true
  fi
}
python=$(command -v python3 || true)
if [ -z "$python" ]; then
  say "mcp-proxy: python3 is needed (>= 3.10)"
  failed=1
elif [ "$(proxy_have)" = "$MCP_PROXY_VERSION" ] && [ -x "$venv/bin/mcp-proxy" ]; then
  say "mcp-proxy $MCP_PROXY_VERSION already installed in $venv"
else
  say "installing mcp-proxy==$MCP_PROXY_VERSION into $venv"
  if { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
      "mcp-proxy==$MCP_PROXY_VERSION" >&2 &&
    [ "$(proxy_have)" = "$MCP_PROXY_VERSION" ]; then
    say "mcp-proxy $MCP_PROXY_VERSION installed"
  else
    say "mcp-proxy: pip install failed"
    failed=1
  fi
fi

exit "$failed"
