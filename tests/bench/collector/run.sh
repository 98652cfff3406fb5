#!/usr/bin/env bash
# tests/bench/collector/run.sh -- the collector benchmark (docs/benchmarks.md,
# "Collector"). NOT a test: it prints figures and how they were obtained, and asserts
# no timing.
#
# It starts its OWN single-node Apache Kafka (scripts/local-kafka, own run dir and
# ports), grows one cluster step by step (tests/bench/collector/cluster.py: topics of
# 100 partitions, 3 messages per partition, consumer groups with committed offsets on
# 1..5 topics each), and at every step runs the Release build of takhin-bridge twice
# (tests/bench/collector/measure.py):
#   daemon mode    the daemon with no WebSocket client: the collector alone;
#   --cycles mode  every cycle's metrics message also encoded and printed (= one
#                  client subscribed to everything).
# Then prints the machine, the raw JSON of every run (results.jsonl in $OUT) and a
# Markdown table (report.py). The broker is stopped (scripts/local-kafka stop, by its
# pid file) on exit, also on failure or Ctrl-C.
#
# Usage: tests/bench/collector/run.sh
# Environment:
#   TB_BINARY        takhin-bridge to measure (default: build the Release tree in
#                    $BUILD_DIR and use it)
#   BUILD_DIR        default /tmp/build-bench-collector (CMAKE_BUILD_TYPE=Release)
#   STEPS            "PARTITIONS:GROUPS ..." in growing order
#                    (default "1000:100 2000:200 5000:200 10000:200 10000:1000 15000:1500")
#   CYCLES           measured cycles per run (default 12; 2 more are run: the first
#                    one, connection set-up, and a last one that is not measured)
#   POLL_MS          kafka.poll_interval_ms (default 2000)
#   OUT              results directory (default /tmp/tb-bench-collector)
#   KAFKA_PORT, KAFKA_CONTROLLER_PORT   default 39392 / 39393
#   TB_KAFKA_RUN_DIR default /tmp/tb-bench-collector-kafka
#   KAFKA_HEAP       default "-Xms1g -Xmx2g"
#   KAFKA_VERSION    as scripts/local-kafka (default 4.1.1)
#   KAFKA_EXTRA      more settings for the bridge's kafka group, libconfig syntax,
#                    e.g. "list_offsets_chunk = 500; max_in_flight = 64;"
#   VARIANTS         '|'-separated kafka settings measured IN ADDITION at every step,
#                    daemon mode only, e.g. "list_offsets_chunk = 250;|max_in_flight = 128;"
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=tests/bench/machine.sh
. "$HERE/../machine.sh"
PY=/usr/bin/python3
STEPS="${STEPS:-1000:100 2000:200 5000:200 10000:200 10000:1000 15000:1500}"
CYCLES="${CYCLES:-12}"
POLL_MS="${POLL_MS:-2000}"
OUT="${OUT:-/tmp/tb-bench-collector}"
BUILD_DIR="${BUILD_DIR:-/tmp/build-bench-collector}"
export KAFKA_PORT="${KAFKA_PORT:-39392}"
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-39393}"
export TB_KAFKA_RUN_DIR="${TB_KAFKA_RUN_DIR:-/tmp/tb-bench-collector-kafka}"
export KAFKA_HEAP="${KAFKA_HEAP:--Xms1g -Xmx2g}"
export KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"

say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- binary
bench_binary "$SRC" "$BUILD_DIR"

mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

# ---------------------------------------------------------------- machine
{
    bench_machine "$TB_BINARY"
    echo "kafka:       $KAFKA_VERSION (scripts/local-kafka, single node KRaft, heap $KAFKA_HEAP)"
    echo "librdkafka:  $(pkg-config --modversion rdkafka 2>/dev/null || echo '?')"
    echo "limits:      ulimit -n $(ulimit -n), vm.max_map_count $(cat /proc/sys/vm/max_map_count)"
    echo "loadavg:     $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- broker
cleanup() {
    local rc=$?
    say "stopping the benchmark broker ..."
    "$SRC/scripts/local-kafka" stop || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BOOTSTRAP=$("$SRC/scripts/local-kafka" start)
BROKER_PID=$(cat "$TB_KAFKA_RUN_DIR/kafka.pid")
say "broker $BOOTSTRAP (pid $BROKER_PID)"

write_cfg() { # write_cfg FILE MODE EXTRA
    {
        echo "kafka = {"
        echo "  bootstrap_servers = \"$BOOTSTRAP\";"
        echo "  poll_interval_ms = $POLL_MS;"
        [[ -n "$3" ]] && echo "  $3"
        # cycles mode: librdkafka's own request counter, fresh at every cycle end
        [[ "$2" == cycles ]] && echo "  statistics_interval_ms = 100;"
        echo "};"
        echo "server = { address = \"127.0.0.1\"; port = 0; };"
        echo "collector = { stale_after_ms = 600000; };"
        echo "log = { level = \"debug\"; };"
    } >"$1"
}

broker_info() { # JSON fields about the broker process
    local fds maps rss
    fds=$(ls "/proc/$BROKER_PID/fd" 2>/dev/null | wc -l)
    maps=$(wc -l <"/proc/$BROKER_PID/maps" 2>/dev/null || echo 0)
    rss=$(awk '/^VmRSS/ {printf "%d", $2/1024}' "/proc/$BROKER_PID/status" 2>/dev/null || echo 0)
    printf '"broker_fds": %s, "broker_maps": %s, "broker_rss_mib": %s' "$fds" "$maps" "$rss"
}

for step in $STEPS; do
    P="${step%%:*}"
    G="${step##*:}"
    say ""
    say "== $P partitions, $G groups: growing the cluster ..."
    cluster=$("$PY" "$HERE/cluster.py" --bootstrap "$BOOTSTRAP" --partitions "$P" --groups "$G")
    cluster="${cluster%\}}, $(broker_info)}"
    say "   $cluster"
    sleep 5 # let the broker settle (log flushes, group metadata writes)
    runs=("daemon|${KAFKA_EXTRA:-}" "cycles|${KAFKA_EXTRA:-}")
    if [[ -n "${VARIANTS:-}" ]]; then
        IFS='|' read -r -a extra <<<"$VARIANTS"
        for v in "${extra[@]}"; do runs+=("daemon|$v"); done
    fi
    n=0
    for run in "${runs[@]}"; do
        mode="${run%%|*}"
        variant="${run#*|}"
        n=$((n + 1))
        cfg="$OUT/bench-$P-$G-$n-$mode.cfg"
        write_cfg "$cfg" "$mode" "$variant"
        say "   measuring ($mode mode${variant:+, $variant}, $CYCLES cycles + 2) ..."
        res=$("$PY" "$HERE/measure.py" --mode "$mode" --binary "$TB_BINARY" --config "$cfg" \
            --cycles "$((CYCLES + 1))" --skip 1 --label "$P/$G")
        "$PY" -c '
import json, sys
r = json.loads(sys.argv[1])
r["partitions"], r["groups"] = int(sys.argv[2]), int(sys.argv[3])
r["cluster"] = json.loads(sys.argv[4])
r["variant"] = sys.argv[5]
r["default"] = sys.argv[6] == "1"
print(json.dumps(r))
r.pop("per_cycle")
print("   " + json.dumps(r), file=sys.stderr)
' "$res" "$P" "$G" "$cluster" "$variant" "$([[ $n -le 2 ]] && echo 1 || echo 0)" >>"$RESULTS"
    done
done

echo
cat "$OUT/machine.txt"
echo
echo "## results ($CYCLES measured cycles per run, poll_interval_ms $POLL_MS${KAFKA_EXTRA:+, kafka: $KAFKA_EXTRA}; raw: $RESULTS)"
echo
"$PY" "$HERE/report.py" "$RESULTS"
