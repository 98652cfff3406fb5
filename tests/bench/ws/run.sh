#!/usr/bin/env bash
# tests/bench/ws/run.sh -- the WebSocket fan-out benchmark (docs/benchmarks.md,
# "WebSocket fan-out"). NOT a test: it prints figures and how they were obtained, and
# asserts no timing.
#
# What it does:
#   1. node + npm (Debian's nodejs/npm are installed when missing), `npm ci` here
#      (the npm `ws` client; node_modules/ is not committed);
#   2. its OWN single-node Kafka (scripts/local-kafka, own run dir and ports) with
#      $TOPICS topics x $PARTITIONS partitions and $NGROUPS consumer groups with
#      committed offsets (cluster.py), so that the metrics message is >= 8 KB (the size
#      actually sent is printed);
#   3. for every N in $NS: a FRESH Release takhin-bridge (server.max_clients $MAX_CLIENTS,
#      kafka.poll_interval_ms $POLL_MS, `ulimit -n` raised to the hard limit), then
#      bench.js: baseline with 0 clients, $PROCS load processes (load.js) with N/$PROCS
#      connections each from their own source address 127.0.0.2, .3, ..., a window of
#      $TICKS poll intervals with a burst of $BURST topic creations and deletions
#      (topic_created / topic_deleted events to every client); the bridge is stopped
#      (SIGTERM by pid) after each N;
#   4. prints the machine, the kernel limits that matter, one JSON line per N
#      ($OUT/results.jsonl) and a Markdown table (report.js).
# Everything it started (load processes, bridge, broker) is stopped on exit, also on
# failure or Ctrl-C. Only loopback addresses are used. No sysctl is changed.
#
# Usage: tests/bench/ws/run.sh
# Environment (defaults):
#   NS="1000 5000 10000"  PROCS=4  TICKS=10  POLL_MS=2000  BURST=20  CONCURRENCY=64
#   TOPICS=30  PARTITIONS=3  NGROUPS=4  GROUP_TOPICS=2  MAX_CLIENTS=12000
#   TB_BINARY   takhin-bridge to measure (default: Release build in $BUILD_DIR)
#   BUILD_DIR   /tmp/build-bench-ws          OUT  /tmp/tb-bench-ws
#   KAFKA_PORT / KAFKA_CONTROLLER_PORT 39792 / 39793, TB_KAFKA_RUN_DIR /tmp/tb-bench-ws-kafka
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=tests/bench/machine.sh
. "$HERE/../machine.sh"
PY=/usr/bin/python3
NS="${NS:-1000 5000 10000}"
PROCS="${PROCS:-4}"
TICKS="${TICKS:-10}"
POLL_MS="${POLL_MS:-2000}"
BURST="${BURST:-20}"
CONCURRENCY="${CONCURRENCY:-64}"
TOPICS="${TOPICS:-30}"
PARTITIONS="${PARTITIONS:-3}"
NGROUPS="${NGROUPS:-4}"
GROUP_TOPICS="${GROUP_TOPICS:-2}"
MAX_CLIENTS="${MAX_CLIENTS:-12000}"
OUT="${OUT:-/tmp/tb-bench-ws}"
BUILD_DIR="${BUILD_DIR:-/tmp/build-bench-ws}"
export KAFKA_PORT="${KAFKA_PORT:-39792}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-39793}"
export TB_KAFKA_RUN_DIR="${TB_KAFKA_RUN_DIR:-/tmp/tb-bench-ws-kafka}"
export KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m}"

say() { printf '%s\n' "$*" >&2; }

BRIDGE_PID=""
BENCH_PID=""
KAFKA_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$BENCH_PID" ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true # its load processes exit with it (IPC)
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    stop_bridge
    if [[ "$KAFKA_STARTED" == 1 ]]; then
        say "stopping the benchmark broker ..."
        "$SRC/scripts/local-kafka" stop || true
    fi
    exit "$rc"
}
stop_bridge() {
    [[ -n "$BRIDGE_PID" ]] || return 0
    if kill -0 "$BRIDGE_PID" 2>/dev/null; then
        kill -TERM "$BRIDGE_PID" 2>/dev/null || true
        for _ in $(seq 1 150); do
            kill -0 "$BRIDGE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$BRIDGE_PID" 2>/dev/null && kill -KILL "$BRIDGE_PID" 2>/dev/null || true
    fi
    wait "$BRIDGE_PID" 2>/dev/null || true
    BRIDGE_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- node + ws client
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "installing Debian's nodejs and npm ..."
    apt-get install -y nodejs npm >/dev/null || { apt-get update >/dev/null && apt-get install -y nodejs npm >/dev/null; }
fi
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# ---------------------------------------------------------------- binary
bench_binary "$SRC" "$BUILD_DIR"

# ---------------------------------------------------------------- limits
# The hard limit can only be raised with CAP_SYS_RESOURCE: use what we may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
{
    bench_machine "$TB_BINARY"
    echo "libws:       $(pkg-config --modversion libwebsockets 2>/dev/null || echo '?'), node $(node --version), npm ws $(node -p "require('$HERE/node_modules/ws/package.json').version")"
    echo "limits:      ulimit -n $NOFILE (hard $(ulimit -Hn)); ip_local_port_range $(sysctl -n net.ipv4.ip_local_port_range | tr '\t' ' '); somaxconn $(sysctl -n net.core.somaxconn); tcp_max_syn_backlog $(sysctl -n net.ipv4.tcp_max_syn_backlog)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine are not ours to stop)"
} | tee "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- broker + cluster
BOOTSTRAP=$("$SRC/scripts/local-kafka" start)
KAFKA_STARTED=1
KAFKA_PID=$(cat "$TB_KAFKA_RUN_DIR/kafka.pid")
say "broker $BOOTSTRAP (pid $KAFKA_PID); creating $TOPICS topics x $PARTITIONS partitions, $NGROUPS groups ..."
CLUSTER=$("$PY" "$HERE/cluster.py" setup --bootstrap "$BOOTSTRAP" --topics "$TOPICS" \
    --partitions "$PARTITIONS" --groups "$NGROUPS" --group-topics "$GROUP_TOPICS")
say "cluster: $CLUSTER"

CFG="$OUT/bridge.cfg"
cat >"$CFG" <<EOF
kafka = { bootstrap_servers = "$BOOTSTRAP"; poll_interval_ms = $POLL_MS; };
server = { address = "127.0.0.1"; port = 0; max_clients = $MAX_CLIENTS; };
log = { level = "info"; };
EOF

CLK_TCK=$(getconf CLK_TCK)
for N in $NS; do
    if (( N + 512 > NOFILE )); then
        say "== N=$N skipped: ulimit -n is $NOFILE"
        continue
    fi
    if (( N > MAX_CLIENTS )); then
        say "== N=$N skipped: above MAX_CLIENTS=$MAX_CLIENTS"
        continue
    fi
    say ""
    say "== N=$N: starting a fresh bridge ..."
    LOGF="$OUT/bridge-$N.log"
    "$TB_BINARY" -c "$CFG" 2>"$LOGF" >/dev/null &
    BRIDGE_PID=$!
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$LOGF" | head -1)
        [[ -n "$PORT" ]] && break
        kill -0 "$BRIDGE_PID" 2>/dev/null || { cat "$LOGF" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$PORT" ]] || { say "bridge did not start"; cat "$LOGF" >&2; exit 1; }
    say "   bridge pid $BRIDGE_PID on 127.0.0.1:$PORT"
    node "$HERE/bench.js" --port "$PORT" --pid "$BRIDGE_PID" --n "$N" --procs "$PROCS" \
        --interval-ms "$POLL_MS" --ticks "$TICKS" --bootstrap "$BOOTSTRAP" --burst "$BURST" \
        --kafka-pid "$KAFKA_PID" --concurrency "$CONCURRENCY" --clk-tck "$CLK_TCK" \
        --label "N=$N" >>"$RESULTS" &
    BENCH_PID=$!
    wait "$BENCH_PID"
    BENCH_PID=""
    stop_bridge
    grep -E ' (W|E) |warn|error' "$LOGF" | grep -v 'upgrade refused' | tail -5 >&2 || true
done

echo
cat "$OUT/machine.txt"
echo "cluster:     $CLUSTER"
echo "load:        $PROCS load processes (node + ws), source addresses 127.0.0.2..; $TICKS ticks of ${POLL_MS} ms measured per N; burst of $BURST topics created then deleted in the window"
echo "latency:     per metrics message, Date.now() in the client's onmessage - data.collector.publishedMs (the collector's"
echo "             wall clock at publish; same machine, same clock), first message after connect excluded, exact percentiles"
echo "             over all clients and the ticks published in the window; expected = collector cycles x clients,"
echo "             superseded = takhin_ws_dropped_metrics_total (latest wins) over the window"
echo "events:      spread = first to last client receiving the same event; latency = receive - publishedMs of the"
echo "             metrics message that follows on the same connection (same cycle, same mailbox update)"
echo "cpu:         utime+stime of the bridge (/proc/PID/stat) and its service thread (task PID) over the window /"
echo "             wall time (1.0 = one core); per client per tick = (cpu - cpu with 0 clients) x interval / N"
echo "rss:         VmRSS; per client = (RSS - RSS with 0 clients) / N, after connecting / at the end / max in the window"
echo
echo "## results (raw: $RESULTS)"
echo
node "$HERE/report.js" "$RESULTS"
