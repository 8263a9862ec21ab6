# Install mcp-bridge for the current user (Windows).
#
#   installers\install.ps1 [-Prefix DIR] [-Binary PATH] [-NonInteractive]
#
# Builds the binary with cargo (or copies the one given with -Binary) into
# DIR\bin (default %LOCALAPPDATA%\Programs\mcp-bridge), writes a starter
# config if there is none, and offers to add the bridge to every IDE found
# (mcp-bridge install --all). Safe to run again.
param(
  [string]$Prefix = (Join-Path $env:LOCALAPPDATA "Programs\mcp-bridge"),
  [string]$Binary = "",
  [switch]$NonInteractive
)
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $PSScriptRoot
$bindir = Join-Path $Prefix "bin"
New-Item -ItemType Directory -Force -Path $bindir | Out-Null

if ($Binary -eq "") {
  if (-not (Get-Command cargo -ErrorAction SilentlyContinue)) {
    Write-Error "cargo not found; install Rust from https://rustup.rs or pass -Binary PATH"
  }
  Push-Location $here
  try { cargo build --release --locked } finally { Pop-Location }
  $Binary = Join-Path $here "target\release\mcp-bridge.exe"
}

$dest = Join-Path $bindir "mcp-bridge.exe"
$tmp = "$dest.tmp"
Copy-Item -Force $Binary $tmp
Move-Item -Force $tmp $dest
Write-Output "installed $dest"

$configDir = Join-Path $env:APPDATA "mcp-bridge\mcp-bridge\config"
$config = Join-Path $configDir "config.toml"
if (-not (Test-Path $config)) {
  New-Item -ItemType Directory -Force -Path $configDir | Out-Null
  Copy-Item (Join-Path $here "config\config.example.toml") $config
  Write-Output "wrote a starter config: $config"
} else {
  Write-Output "keeping the existing config: $config"
}

if (-not $NonInteractive) {
  & $dest install --all --dry-run
  $answer = Read-Host "Add mcp-bridge to these IDEs now? [y/N]"
  if ($answer -match '^(y|yes)$') {
    & $dest install --all
    if ($LASTEXITCODE -ne 0) { Write-Error "mcp-bridge install failed (exit $LASTEXITCODE)" }
  } else {
    Write-Output "Skipped. Later: $dest install --all (or name one IDE: cursor, vscode, ...)"
  }
} else {
  Write-Output "Next: $dest install --all   (adds the bridge to every IDE found)"
}
