#!/usr/bin/env bash
# REST API throughput and latency (issue 5's bench): 64 concurrent connections for
# 30 s each against a release node on loopback, with wrk (installed from Debian when
# missing).
#   read:  GET  /api/v3/repos/alice/bench/issues/1
#   write: POST /api/v3/repos/alice/bench/issues (durable: acknowledged after fsync)
#   bare:  the same GET against a bare axum handler answering the bytes the node served
#          for it (crates/guts-api/examples/bare_json.rs), right after the node's run:
#          the ratio is what the node's own work per request costs
# Prints wrk's summaries (requests/s, latency percentiles incl. p50 and p99).
#
# usage: scripts/bench-api.sh [--binary PATH] [--bare PATH] [--duration 30s] [--connections 64]
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/release/guts-node
bare=target/release/examples/bare_json
duration=30s
connections=64
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --bare) bare="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if ! command -v wrk >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq wrk >/dev/null
fi
[ -x "$binary" ] || cargo build --release -p guts-node
[ -x "$bare" ] || cargo build --release -p guts-api --example bare_json

data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
admin=bench-admin-token-0123456789abcdef
GUTS_DATA_DIR="$data" GUTS_API_ADDR="127.0.0.1:$port" GUTS_METRICS_ADDR="127.0.0.1:$((port + 1))" \
  GUTS_ADMIN_TOKEN="$admin" GUTS_LOG_LEVEL=warn GUTS_MAX_CONNECTIONS=100000 \
  GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR=100000000 \
  "$binary" >"$data/node.log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$data"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/health/ready" >/dev/null && break; sleep 0.1; done

token=$(curl -fs -X POST -H "Authorization: Bearer $admin" "$base/admin/users" \
  -d '{"login":"alice"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
curl -fs -X POST -H "Authorization: token $token" "$base/api/v3/user/repos" -d '{"name":"bench"}' >/dev/null
curl -fs -X POST -H "Authorization: token $token" "$base/api/v3/repos/alice/bench/issues" \
  -d '{"title":"read me","body":"the issue the read benchmark fetches"}' >/dev/null

post=$(mktemp)
cat >"$post" <<LUA
wrk.method = "POST"
wrk.body = '{"title":"load","body":"created by bench-api.sh"}'
wrk.headers["Authorization"] = "token $token"
wrk.headers["Content-Type"] = "application/json"
LUA
threads=2
issue="/api/v3/repos/alice/bench/issues/1"
echo "== read: GET issue, $connections connections, $duration"
wrk -t"$threads" -c"$connections" -d"$duration" --latency \
  -H "Authorization: token $token" "$base$issue" | tee "$data/read.txt"
curl -fs -H "Authorization: token $token" "$base$issue" >"$data/issue.json"
bare_port=$((port + 2))
"$bare" "$data/issue.json" "127.0.0.1:$bare_port" &
bare_pid=$!
trap 'kill $node $bare_pid 2>/dev/null; wait $node $bare_pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$bare_port$issue" >/dev/null && break; sleep 0.1; done
echo "== reference: the same $(wc -c <"$data/issue.json") bytes from a bare axum handler"
wrk -t"$threads" -c"$connections" -d"$duration" --latency \
  -H "Authorization: token $token" "http://127.0.0.1:$bare_port$issue" | tee "$data/bare.txt"
kill $bare_pid
rate() { awk '/^Requests\/sec/ {print $2}' "$1"; }
echo "== read rate against the bare handler: $(rate "$data/read.txt") / $(rate "$data/bare.txt") =" \
  "$(python3 -c "print(round($(rate "$data/read.txt") / $(rate "$data/bare.txt"), 2))")"
echo "== write: POST issue (durable), $connections connections, $duration"
wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$post" \
  "$base/api/v3/repos/alice/bench/issues"
created=$(curl -fsI -H "Authorization: token $token" "$base/api/v3/repos/alice/bench/issues?state=all&per_page=1" \
  | tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count" {print $2}')
echo "== issues stored: $created"
echo "== node peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$node/status)"
rm -f "$post"
