#!/usr/bin/env bash
# Times whole commands side by side, in one run, and prints a markdown table.
#
#   bash benches/compare.sh [OUT.md]
#
# Installs what it needs from Debian's packages when missing and run as root (hyperfine, pass,
# gnupg). Everything it creates lives in a temp dir that is removed at the end; the agent it
# starts is locked before it exits.
#
# Compared now (the agent issue's acceptance):
#   warm `sfvault get` through the agent  vs  a Rust hello-world process  vs  `pass show`
#   with a cached gpg-agent; plus a cold `sfvault get` (default KDF, no agent) for scale.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need hyperfine || ! need pass || ! need gpg; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    apt-get install -y -qq hyperfine pass gnupg >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq hyperfine pass gnupg >/dev/null; }
  else
    echo "compare.sh: needs hyperfine, pass and gnupg (apt-get install hyperfine pass gnupg)" >&2
    exit 1
  fi
fi

cargo build --release --quiet
rust_version=$(rustc --version | cut -d' ' -f1-2)
work=$(mktemp -d)
cleanup() {
  HOME=$work/home XDG_RUNTIME_DIR=$work/run "$PWD/target/release/sfvault" lock >/dev/null 2>&1 || true
  gpgconf --homedir "$work/gnupg" --kill gpg-agent >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# A hello-world process, built the way sfvault is (release, thin LTO).
mkdir -p "$work/hello"
printf 'fn main() { println!("hello"); }\n' > "$work/hello/main.rs"
rustc -O -C lto=thin -o "$work/hello/hello" "$work/hello/main.rs"

# sfvault: default KDF, one entry, agent unlocked.
export HOME=$work/home XDG_RUNTIME_DIR=$work/run
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
printf 'a passphrase for benchmarking only\n' > "$work/pass"; chmod 600 "$work/pass"
sfv=$PWD/target/release/sfvault
SFVAULT_PASSPHRASE_FILE=$work/pass "$sfv" -q init
printf 'bench-secret' | SFVAULT_PASSPHRASE_FILE=$work/pass "$sfv" -q add acme/ci --consumer-key 3MVG9BENCHKEY
SFVAULT_PASSPHRASE_FILE=$work/pass "$sfv" -q unlock --timeout 30m

# pass: a gpg key with a passphrase, cached in gpg-agent by one loopback decryption.
export GNUPGHOME=$work/gnupg PASSWORD_STORE_DIR=$work/password-store
mkdir -p "$GNUPGHOME"; chmod 700 "$GNUPGHOME"
printf 'allow-loopback-pinentry\ndefault-cache-ttl 3600\nmax-cache-ttl 3600\n' > "$GNUPGHOME/gpg-agent.conf"
gpg --batch --quiet --pinentry-mode loopback --passphrase bench --quick-gen-key bench@example.invalid default default never 2>/dev/null
pass init bench@example.invalid >/dev/null
printf '3MVG9BENCHKEY\n' | pass insert -e acme/ci/consumer_key >/dev/null
gpg --batch --quiet --pinentry-mode loopback --passphrase bench -d "$PASSWORD_STORE_DIR/acme/ci/consumer_key.gpg" >/dev/null 2>&1
pass show acme/ci/consumer_key >/dev/null   # the cache answers: no prompt

[ "$("$sfv" get acme/ci consumer_key)" = 3MVG9BENCHKEY ] || { echo "sfvault get failed" >&2; exit 1; }

run() { # name runs warmup command...
  local name=$1 runs=$2 warmup=$3; shift 3
  hyperfine -N --warmup "$warmup" --runs "$runs" --style none --export-json "$work/$name.json" "$@" >/dev/null 2>&1
}
run warm 300 20 \
  -n "hello-world process" "$work/hello/hello" \
  -n "sfvault get (agent, warm)" "$sfv get acme/ci consumer_key"
run pass 30 3 -n "pass show (gpg-agent cached)" "pass show acme/ci/consumer_key"
run cold 20 2 -n "sfvault get --no-agent (default KDF: 64 MiB, t=3, p=4)" \
  "env SFVAULT_PASSPHRASE_FILE=$work/pass $sfv --no-agent get acme/ci consumer_key"

{
  echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(uname -sr)."
  echo "Versions: $("$sfv" --version), $rust_version, $(hyperfine --version), pass $(pass version | grep -o 'v[0-9.]*' | head -1), $(gpg --version | head -1)."
  echo
  python3 - "$work"/warm.json "$work"/pass.json "$work"/cold.json <<'PY'
import json, sys, statistics
rows = []
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        t = sorted(x * 1000 for x in r["times"])
        p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]
        rows.append((r["command"], statistics.median(t), p95, len(t)))
base = rows[0][1]
print("| command | runs | median | p95 | median ÷ hello-world |")
print("|---|---:|---:|---:|---:|")
for name, med, p95, n in rows:
    print(f"| {name} | {n} | {med:.2f} ms | {p95:.2f} ms | {med / base:.2f}× |")
PY
} > "$out"
