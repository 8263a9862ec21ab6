#!/usr/bin/env bash
# Installs the test-only dependencies of tests/interop.rs and tests/clients.rs,
# all pinned, from the package registries only:
#   - npm (package.json + package-lock.json) into tests/interop/node_modules:
#     the MCP reference server @modelcontextprotocol/server-everything, the
#     TypeScript SDK clients @modelcontextprotocol/sdk (v1) and
#     @modelcontextprotocol/client (v2), and the real clients Claude Code
#     (@anthropic-ai/claude-code), Gemini CLI (@google/gemini-cli), opencode
#     (opencode-ai), Codex (@openai/codex) and GitHub Copilot CLI
#     (@github/copilot); all but Gemini CLI are native
#     binaries shipped in per-platform npm packages (optionalDependencies), so
#     nothing is downloaded from anywhere but the npm registry;
#   - PyPI (requirements.txt) into the venv tests/interop/.venv: the MCP Python
#     SDK `mcp`, and `grpcio` with `opentelemetry-proto` for the OTLP/gRPC
#     collector of tests/telemetry.rs.
# Idempotent: each part does nothing when what is installed matches the pins.
set -euo pipefail
cd "$(dirname "$0")"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "tests/interop/setup.sh: '$1' not found; $2" >&2
    exit 1
  fi
}
need node "install Node.js (>= 20) and npm"
need npm "install Node.js (>= 20) and npm"
need python3 "install Python (>= 3.10) with the venv module"

# ---- npm ----
# Every pinned dependency at its pinned version ("" when one is missing or off).
npm_mismatch=$(node -e '
  const deps = require("./package.json").dependencies;
  const off = [];
  for (const [name, want] of Object.entries(deps)) {
    let have = "";
    try { have = require("./node_modules/" + name + "/package.json").version; } catch {}
    if (have !== want) off.push(name + " " + (have || "missing") + " (want " + want + ")");
  }
  console.log(off.join(", "));
')

# npm writes node_modules/.package-lock.json on every install; if it is newer than
# the committed lock file and every pin is there, nothing has changed.
if [ -z "$npm_mismatch" ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "npm test dependencies already installed in tests/interop/node_modules"
else
  if [ -n "$npm_mismatch" ]; then echo "installing npm test dependencies: $npm_mismatch"; fi
  # `npm install --no-save`, not `npm ci`: the lock has no entries for the
  # other platforms' opencode binaries (opencode-darwin-*, -windows-*, -musl:
  # optional dependencies the registry did not serve when it was made), and
  # `npm ci` refuses a lock that misses any optional dependency. `install`
  # takes every locked version as locked, skips what does not fit this
  # platform, and with --no-save leaves the lock as committed; the pins are
  # checked below.
  npm install --no-save --no-audit --no-fund --loglevel=error
  npm_mismatch=$(node -e '
    const deps = require("./package.json").dependencies;
    for (const [name, want] of Object.entries(deps)) {
      const have = require("./node_modules/" + name + "/package.json").version;
      if (have !== want) console.log(name + " " + have + " (want " + want + ")");
    }
  ')
  if [ -n "$npm_mismatch" ]; then
    echo "tests/interop/setup.sh: installed versions differ from package.json: $npm_mismatch" >&2
    exit 1
  fi
  echo "npm test dependencies installed in tests/interop/node_modules"
fi
if [ ! -x node_modules/.bin/claude ]; then
  echo "tests/interop/setup.sh: Claude Code's binary node_modules/.bin/claude is missing (no package for this platform?)" >&2
  exit 1
fi
# The real clients of tests/clients.rs start (their per-platform binary is there
# and runs).
for bin in gemini opencode codex copilot; do
  if ! version=$(node_modules/.bin/$bin --version 2>&1); then
    echo "tests/interop/setup.sh: node_modules/.bin/$bin does not start (no package for this platform?): $version" >&2
    exit 1
  fi
done

# ---- Python ----
want_sum=$(sha256sum requirements.txt | cut -d' ' -f1)
have_sum=$(cat .venv/requirements.sha256 2>/dev/null || true)
if [ -x .venv/bin/python ] && [ "$have_sum" = "$want_sum" ]; then
  echo "Python test dependencies already installed in tests/interop/.venv"
else
  python3 -m venv --clear .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.txt
  echo "$want_sum" > .venv/requirements.sha256
  echo "Python test dependencies installed in tests/interop/.venv ($(.venv/bin/python -c 'import importlib.metadata as m; print("mcp", m.version("mcp"))'))"
fi
