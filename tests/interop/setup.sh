#!/usr/bin/env bash
# Installs the test-only npm dependency of tests/interop.rs (the MCP reference
# server @modelcontextprotocol/server-everything, pinned in package.json and
# package-lock.json) into tests/interop/node_modules. Idempotent: does nothing
# when the locked version is already installed.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/interop/setup.sh: '$tool' not found; install Node.js (>= 18) and npm" >&2
    exit 1
  fi
done

pkg=node_modules/@modelcontextprotocol/server-everything/package.json
want=$(node -p 'require("./package.json").dependencies["@modelcontextprotocol/server-everything"]')
have=$(node -p "try { require('./$pkg').version } catch { '' }")

# npm writes node_modules/.package-lock.json on every install; if it is newer than
# the committed lock file and the pinned version is there, nothing has changed.
if [ "$have" = "$want" ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "server-everything $have already installed in tests/interop/node_modules"
  exit 0
fi

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

have=$(node -p "require('./$pkg').version")
if [ "$have" != "$want" ]; then
  echo "tests/interop/setup.sh: installed server-everything $have, expected $want" >&2
  exit 1
fi
echo "server-everything $have installed in tests/interop/node_modules"
