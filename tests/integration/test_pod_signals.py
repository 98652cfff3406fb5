"""Pod-local signals against the real local Kafka (issue: measure what the seed's
metrics promise): topic sizes and disk usage from the broker's own data directory,
produced bytes per second, established connections to the broker's port, memory and
threads of the broker process (or of the bridge), and every source absent.

Every expected value is computed here, independently of the bridge: sizes with
os.stat over the same files, connections by parsing /proc/net/tcp{,6} in Python,
memory and threads from /proc/PID/status. Values that move while the broker runs
(disk blocks, socket tables, thread counts) are compared on a message and a reading
taken right after it, retried over a few cycles until both agree: equality is
required, never a tolerance.
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import LOCAL_KAFKA, WAIT_S, only


# ---------------------------------------------------------------------------------
# Independent readers
# ---------------------------------------------------------------------------------
def local_kafka():
    """(pid, run_dir, data_dir, port) of the suite's own broker (skips with an external one)."""
    if os.environ.get("TB_KAFKA_BOOTSTRAP"):
        pytest.skip("an external broker (TB_KAFKA_BOOTSTRAP): its files are not local")
    r = subprocess.run([LOCAL_KAFKA, "status"], capture_output=True, text=True)
    m = re.match(r"running (\d+) (\S+):(\d+)", r.stdout.strip())
    if not m:
        pytest.fail("the suite's own broker is not running: " + r.stdout + r.stderr)
    run_dir = os.environ.get("TB_KAFKA_RUN_DIR") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"takhin-local-kafka-{os.getuid()}")
    props = open(os.path.join(run_dir, "server.properties")).read()
    data_dir = re.search(r"^log\.dirs=(.*)$", props, re.M).group(1).strip()
    return int(m.group(1)), run_dir, data_dir, int(m.group(3))


def log_bytes(data_dir, topic, partitions):
    """Sum of st_size of the *.log segments of @topic's partition directories."""
    total = 0
    for p in range(partitions):
        d = os.path.join(data_dir, f"{topic}-{p}")
        for name in os.listdir(d):
            if name.endswith(".log"):
                total += os.stat(os.path.join(d, name)).st_size
    return total


def disk_bytes(data_dir):
    """Allocated bytes (st_blocks * 512) of every regular file, links not followed."""
    total = 0
    for root, dirs, files in os.walk(data_dir, followlinks=False):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if (st.st_mode & 0o170000) == 0o100000:
                total += st.st_blocks * 512
    return total


def established(port):
    """ESTABLISHED sockets whose local port is @port, from /proc/net/tcp and tcp6."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 3 and f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def proc_status(pid):
    """(VmRSS bytes, Threads) of @pid."""
    text = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) * 1024
    threads = int(re.search(r"^Threads:\s+(\d+)", text, re.M).group(1))
    return rss, threads


def agree(stream, reported, measured, what, tries=20):
    """Reads metrics until reported(data) == measured() taken right after the message;
    returns (data, value)."""
    seen = []
    for _ in range(tries):
        d = stream.next_metrics()["data"]
        got, want = reported(d), measured()
        if got == want:
            return d, got
        seen.append((got, want))
    raise AssertionError(f"{what}: reported vs measured never agreed: {seen}")


def topic_stats(d, name):
    for t in d["topicStats"]:
        if t["name"] == name:
            return t
    return None


# ---------------------------------------------------------------------------------
# Log directories
# ---------------------------------------------------------------------------------
def test_topic_sizes_and_disk_usage_equal_the_files(kadmin, cycle_stream, unique):
    _, _, data_dir, _ = local_kafka()
    t = unique + "-t"
    kadmin.create_topic(t, 2)
    kadmin.produce(t, {0: 300, 1: 120})
    expected = log_bytes(data_dir, t, 2)  # the topic is quiescent from now on
    assert expected > 0
    s = cycle_stream({**only(unique), "pod.log_dirs": [data_dir]})

    d = s.wait_for(lambda m: m["type"] == "metrics" and topic_stats(m["data"], t)
                   and topic_stats(m["data"], t)["totalBytes"] > 0, "topic sizes")["data"]
    ts = topic_stats(d, t)
    assert ts["totalBytes"] == expected == log_bytes(data_dir, t, 2)
    assert "totalBytes" not in ts["unavailable"]

    # disk usage: every file's blocks, the metadata log and checkpoints included
    d, disk = agree(s, lambda d: d["clusterHealth"]["diskUsageBytes"],
                    lambda: disk_bytes(data_dir), "diskUsageBytes")
    assert disk > expected
    assert "clusterHealth.diskUsageBytes" not in d["unavailable"]

    # no growth between two scans: an available rate of exactly 0 B/s
    d = s.wait_for(lambda m: m["type"] == "metrics"
                   and "produceBytes" not in topic_stats(m["data"], t)["unavailable"],
                   "a byte rate")["data"]
    assert topic_stats(d, t)["produceBytes"] == 0
    assert topic_stats(d, t)["totalBytes"] == expected
    assert "throughput.produceBytes" not in d["unavailable"]
    # fetched bytes are never measured
    assert d["throughput"]["fetchBytes"] == 0
    assert "throughput.fetchBytes" in d["unavailable"]


def test_produce_bytes_follow_the_logs(kadmin, cycle_stream, unique):
    _, _, data_dir, _ = local_kafka()
    t = unique + "-t"
    kadmin.create_topic(t, 1)
    s = cycle_stream({**only(unique), "pod.log_dirs": [data_dir]})
    stop = threading.Event()

    def produce():
        while not stop.is_set():
            kadmin.produce(t, {0: 200})
            time.sleep(0.05)

    th = threading.Thread(target=produce, daemon=True)
    th.start()
    try:
        d = s.wait_for(lambda m: m["type"] == "metrics" and topic_stats(m["data"], t)
                       and topic_stats(m["data"], t)["produceBytes"] > 0,
                       "bytes/s while producing")["data"]
        ts = topic_stats(d, t)
        assert "produceBytes" not in ts["unavailable"]
        # the cluster figure sums the topics (only this one here)
        assert d["throughput"]["produceBytes"] == ts["produceBytes"]
    finally:
        stop.set()
        th.join(WAIT_S)
    final = log_bytes(data_dir, t, 1)
    # quiet again: the logs stop growing and the rate is exactly 0 once two scans agree
    d = s.wait_for(lambda m: m["type"] == "metrics"
                   and topic_stats(m["data"], t)["totalBytes"] == final
                   and topic_stats(m["data"], t)["produceBytes"] == 0
                   and "produceBytes" not in topic_stats(m["data"], t)["unavailable"],
                   "a rate of 0 after producing")["data"]
    assert topic_stats(d, t)["totalBytes"] == log_bytes(data_dir, t, 1)


# ---------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------
def test_active_connections_count_the_tests_own_sockets(cycle_stream, unique):
    _, _, _, port = local_kafka()
    s = cycle_stream({**only(unique), "pod.broker_port": port})
    d, before = agree(s, lambda d: d["clusterHealth"]["activeConnections"],
                      lambda: established(port), "activeConnections before")
    assert "clusterHealth.activeConnections" not in d["unavailable"]
    assert before >= 1  # at least the bridge's own client

    K = 5
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(K)]
    try:
        d, during = agree(s, lambda d: d["clusterHealth"]["activeConnections"],
                          lambda: established(port), "activeConnections with K more")
        assert during == before + K
    finally:
        for so in socks:
            so.close()
    d, after = agree(s, lambda d: d["clusterHealth"]["activeConnections"],
                     lambda: established(port), "activeConnections after closing")
    assert after == before


# ---------------------------------------------------------------------------------
# Process
# ---------------------------------------------------------------------------------
def test_memory_and_threads_of_a_matched_process(cycle_stream, unique):
    # A process with a unique command line and a steady footprint stands for the broker
    # (the matching is the same): its VmRSS and thread count can be compared exactly.
    marker = unique + "-broker-stand-in"
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
    try:
        s = cycle_stream({**only(unique), "pod.process_match": marker})
        d, got = agree(s, lambda d: (d["clusterHealth"]["processSource"],
                                     d["clusterHealth"]["processPid"],
                                     d["clusterHealth"]["memoryUsageBytes"],
                                     d["clusterHealth"]["goroutineCount"]),
                       lambda: ("broker", helper.pid) + proc_status(helper.pid),
                       "the helper's memory and threads")
        assert got[2] > 0 and got[3] == 1
        assert "clusterHealth.memoryUsageBytes" not in d["unavailable"]
        assert "clusterHealth.goroutineCount" not in d["unavailable"]
    finally:
        helper.kill()
        helper.wait()
    # the process is gone: the bridge falls back to itself and says so
    d = s.wait_for(lambda m: m["type"] == "metrics"
                   and m["data"]["clusterHealth"]["processSource"] == "bridge",
                   "the fallback to the bridge")["data"]
    assert d["clusterHealth"]["processPid"] == s.proc.pid
    assert "no process" in s.stderr_text() and marker in s.stderr_text()


def test_the_real_broker_process(cycle_stream, unique):
    pid, run_dir, _, _ = local_kafka()
    # the broker's command line names its own config file: unique per Kafka instance
    s = cycle_stream({**only(unique),
                      "pod.process_match": os.path.join(run_dir, "server.properties")})
    d = s.wait_for(lambda m: m["type"] == "metrics", "metrics")["data"]
    ch = d["clusterHealth"]
    assert ch["processSource"] == "broker"
    assert ch["processPid"] == pid
    d, threads = agree(s, lambda d: d["clusterHealth"]["goroutineCount"],
                       lambda: proc_status(pid)[1], "the broker's thread count")
    assert threads > 10  # a JVM
    assert d["clusterHealth"]["memoryUsageBytes"] > 10 * 1024 * 1024


def test_the_bridge_itself_without_a_match(cycle_stream, unique):
    s = cycle_stream(only(unique))
    d, got = agree(s, lambda d: (d["clusterHealth"]["processSource"],
                                 d["clusterHealth"]["processPid"],
                                 d["clusterHealth"]["goroutineCount"]),
                   lambda: ("bridge", s.proc.pid, proc_status(s.proc.pid)[1]),
                   "the bridge's own threads")
    assert got[2] >= 2  # main + collector at least
    assert d["clusterHealth"]["memoryUsageBytes"] > 0


# ---------------------------------------------------------------------------------
# Everything absent
# ---------------------------------------------------------------------------------
POD_FIELDS = ["throughput.produceBytes", "clusterHealth.activeConnections",
              "clusterHealth.diskUsageBytes", "clusterHealth.memoryUsageBytes",
              "clusterHealth.goroutineCount"]
LATENCY = ["latency.produceP50", "latency.produceP95", "latency.produceP99",
           "latency.fetchP50", "latency.fetchP95", "latency.fetchP99"]


def test_every_source_absent_is_unavailable_and_healthy(bridge, kadmin, unique, tmp_path):
    import json
    t = unique + "-t"
    kadmin.create_topic(t, 1)
    port = int(kadmin.bootstrap.rsplit(":", 1)[1])
    b = bridge({**only(unique),
                "pod.log_dirs": [str(tmp_path / "no-volume")],
                "pod.broker_port": port,
                "pod.process_match": "kafka.Kafka",
                "pod.proc_root": str(tmp_path / "no-proc")}, kafka=True)
    deadline = time.monotonic() + WAIT_S
    while True:
        status, _, body = b.http("/readyz")
        if status == 200:
            break
        assert time.monotonic() < deadline, f"never ready: {status} {body}\n{b.stderr_text()}"
        time.sleep(0.2)
    status, _, body = b.http("/api/monitoring/metrics")
    assert status == 200
    d = json.loads(body)
    for path in POD_FIELDS + LATENCY + ["throughput.fetchBytes"]:
        assert path in d["unavailable"], path
    ch = d["clusterHealth"]
    assert ch["activeConnections"] == 0 and ch["diskUsageBytes"] == 0
    assert ch["memoryUsageBytes"] == 0 and ch["goroutineCount"] == 0
    assert ch["processSource"] is None and ch["processPid"] is None
    ts = topic_stats(d, t)
    assert ts["totalBytes"] == 0 and "totalBytes" in ts["unavailable"]
    assert d["canary"]["state"] == "disabled"
    # the Kafka-polled part is unaffected
    assert ch["totalTopics"] == 1 and "clusterHealth.totalTopics" not in d["unavailable"]
    err = b.stderr_text()
    assert "no-volume" in err and "no-proc" in err  # each missing source is a warning
    assert b.proc.poll() is None
    assert b.stop() == 0
