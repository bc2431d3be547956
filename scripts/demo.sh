#!/usr/bin/env bash
# The main job on this machine alone: make keys, authorize a client, run spa-server on
# loopback (libpcap on lo as root, else a bound UDP socket), knock, watch the door open
# and close, and watch an unauthorized knock and a replayed datagram be refused.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh clone: install first (no compiler needed: cap, the libpcap addon, is optional), then build.
if [ ! -x node_modules/.bin/tsc ]; then
  printf '\n\033[1m== %s\033[0m\n' "installing (npm ci)"
  npm ci --no-audit --no-fund
fi
npm run --silent build
KNOCK="node dist/client/spa-knock.cjs"
SERVER="node dist/server/bin.js"
PORT=62299
work=$(mktemp -d /tmp/spa-demo.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "server key (spa-server keygen)"
$SERVER keygen --dir "$work/srv"
say "client keys (spa-knock keygen): alice is authorized, eve is not"
export SPA_KNOCK_HOME="$work/client"
$KNOCK keygen --id alice
$KNOCK keygen --id eve 2>/dev/null >/dev/null
cp "$SPA_KNOCK_HOME/alice.pub" "$work/ssh.keys"

if [ "$(id -u)" != 0 ]; then capture="UDPSocket = yes"; mode="a UDP socket (not root: no libpcap)"
elif ! node -e "require('cap')" 2>/dev/null; then capture="UDPSocket = yes"; mode="a UDP socket (cap, the libpcap addon, is not installed: it needs libpcap-dev and g++)"
else capture="Interface = lo"; mode="libpcap on lo (nothing binds udp/$PORT)"; fi
cat > "$work/spa.conf" <<CONF
[options]
$capture
SPAPort = $PORT
ServerKey = $work/srv/server.key
StateDir = $work/state

[ssh]
spa_keys = $work/ssh.keys
access = tcp/22
start_command = echo "\$(date +%T) door opened for %IP% %PROTO%/%PORT% (key %ID%)" >> $work/door
cmd_timeout = 3
stop_command = echo "\$(date +%T) door closed for %IP% %PROTO%/%PORT%" >> $work/door
CONF
say "configuration ($work/spa.conf)"
cat "$work/spa.conf"
say "spa-server check"
$SERVER check --config "$work/spa.conf"

say "spa-server run, capturing with $mode"
$SERVER run --config "$work/spa.conf" --pretty > "$work/log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do grep -q started "$work/log" && break; sleep 0.1; done
cat "$work/log"

say "alice knocks (spa-knock 127.0.0.1 --key alice -v)"
$KNOCK 127.0.0.1 --key alice --server-key "$work/srv/server.pub" --port $PORT -v
sleep 0.5
say "eve knocks with a key the server does not know (with libpcap, her tag is not in the kernel's filter: the daemon never sees it)"
$KNOCK 127.0.0.1 --key eve --server-key "$work/srv/server.pub" --port $PORT -v
say "a datagram is sent, then the same bytes again (a captured knock replayed): the replay guard refuses the copy (with libpcap, once the filter carries its nonce, the kernel drops further copies)"
hex=$($KNOCK 127.0.0.1 --key alice --server-key "$work/srv/server.pub" --port $PORT --dry-run | tail -n 1)
for _ in 1 2; do node -e "const s=require('dgram').createSocket('udp4');s.send(Buffer.from(process.argv[1],'hex'),$PORT,'127.0.0.1',()=>s.close())" "$hex"; sleep 0.3; done
say "waiting for cmd_timeout (3 s) to close the door"
sleep 3.5
say "spa-server log"
cat "$work/log"
say "what the door's commands did ($work/door)"
cat "$work/door"
