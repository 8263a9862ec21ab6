#!/bin/sh
# Install mcp-bridge for the current user (Linux, macOS).
#
#   installers/install.sh [--prefix DIR] [--binary PATH] [--non-interactive]
#
# Builds the binary with cargo (or copies the one given with --binary) into
# DIR/bin (default ~/.local), writes a starter config from
# config/config.example.toml if there is none, and offers to add the bridge to
# every IDE found (mcp-bridge install --all). Safe to run again.
set -eu

prefix="${HOME}/.local"
binary=""
interactive=1

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --non-interactive) interactive=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 64 ;;
  esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
bindir="${prefix}/bin"
mkdir -p "$bindir"

if [ -z "$binary" ]; then
  if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: cargo not found; install Rust from https://rustup.rs or pass --binary PATH" >&2
    exit 69
  fi
  (cd "$here" && cargo build --release --locked)
  binary="$here/target/release/mcp-bridge"
fi

tmp="${bindir}/.mcp-bridge.$$"
cp "$binary" "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "${bindir}/mcp-bridge"
echo "installed ${bindir}/mcp-bridge"

config_dir="${XDG_CONFIG_HOME:-$HOME/.config}/mcp-bridge"
if [ ! -f "${config_dir}/config.toml" ]; then
  mkdir -p "$config_dir"
  cp "$here/config/config.example.toml" "${config_dir}/config.toml"
  echo "wrote a starter config: ${config_dir}/config.toml"
else
  echo "keeping the existing config: ${config_dir}/config.toml"
fi

case ":${PATH}:" in
  *":${bindir}:"*) ;;
  *) echo "note: ${bindir} is not on your PATH" ;;
esac

if [ "$interactive" -eq 1 ] && [ -t 0 ]; then
  "${bindir}/mcp-bridge" install --all --dry-run || true
  printf 'Add mcp-bridge to these IDEs now? [y/N] '
  read -r answer || answer=""
  case "$answer" in
    y|Y|yes|YES) "${bindir}/mcp-bridge" install --all ;;
    *) echo "Skipped. Later: ${bindir}/mcp-bridge install --all (or name one IDE: cursor, vscode, ...)" ;;
  esac
else
  echo "Next: ${bindir}/mcp-bridge install --all   (adds the bridge to every IDE found)"
fi
