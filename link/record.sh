#!/usr/bin/env bash
# Re-record link/symbol-order.txt (see build.rs): build the release binary with
# symbols, run `serve` under callgrind in front of 10 and then 1 local servers
# (start-up, listing, 100 calls, shutdown), and list the functions that ran.
# Needs valgrind and python3; takes a few minutes plus the build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo rustc --release --bin mcp-bridge -- -C strip=none
cp target/release/mcp-bridge "$out/mcp-bridge"
cat >"$out/vg.sh" <<VG
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --callgrind-out-file=$out/cg.%p.out $out/mcp-bridge "\$@"
VG
chmod +x "$out/vg.sh"
python3 link/drive.py "$out/vg.sh" 10 100
python3 link/drive.py "$out/vg.sh" 1 100
python3 link/order.py mcp-bridge "$out"/cg.*.out >link/symbol-order.txt
# The next plain build is stripped again (and relinked with the new order).
