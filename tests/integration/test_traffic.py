"""takhin-traffic (src/tools/traffic.c) against a real Apache Kafka, checked independently
with confluent-kafka clients and with the bridge itself.

The generator is told what to do; every expectation below is derived here from that
(names, partition counts, the seq -> partition rule, the totals it reports) and compared
with what Kafka itself says.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import BINARY, WAIT_S, only

TRAFFIC = os.environ.get("TB_TRAFFIC") or os.path.join(os.path.dirname(BINARY),
                                                       "takhin-traffic")


class Traffic:
    """A running takhin-traffic; its stdout lines are collected as they are printed."""

    def __init__(self, args, workdir):
        if not os.path.exists(TRAFFIC):
            pytest.fail(f"{TRAFFIC} not built (set TB_TRAFFIC or build takhin-traffic)")
        self.stderr_path = os.path.join(workdir, "traffic.stderr")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([TRAFFIC, *args], stdout=subprocess.PIPE,
                                     stderr=self._stderr, stdin=subprocess.DEVNULL,
                                     text=True)
        self.lines = []
        self._cond = threading.Condition()
        self._done = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def stderr_text(self):
        with open(self.stderr_path) as f:
            return f.read()

    def wait_line(self, pred, what, timeout=WAIT_S):
        """The first stdout line (already printed or to come) for which pred is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    raise AssertionError(f"takhin-traffic never printed {what}; stdout:\n"
                                         + "\n".join(self.lines[-30:])
                                         + "\nstderr:\n" + self.stderr_text())
                self._cond.wait(left)

    def stop(self, sig=signal.SIGINT):
        """Signal it and wait (generously) for it to exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("takhin-traffic did not stop on signal:\n"
                                 + self.stderr_text())
        self._reader.join(WAIT_S)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture
def traffic(tmp_path):
    started = []

    def start(*args):
        t = Traffic(args, str(tmp_path))
        started.append(t)
        return t

    yield start
    for t in started:
        t.close()


def parse_totals(line):
    """'final t=16s produced A=1 B=2 errors=0 consumed G=3 ...' ->
    ({'A': 1, 'B': 2}, 0, {'G': 3, ...})"""
    m = re.fullmatch(r"(?:status|final) t=\d+s produced (.*) errors=(\d+) consumed (.*)",
                     line)
    assert m, line

    def pairs(s):
        return {k: int(v) for k, v in (kv.split("=") for kv in s.split())}
    return pairs(m.group(1)), int(m.group(2)), pairs(m.group(3))


def by(items, key):
    return {x[key]: x for x in items}


# ---------------------------------------------------------------------------------
# Command line (no Kafka needed)
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    ([], "-b BOOTSTRAP is required"),
    (["-b", "x", "--topics", "0"], "--topics"),
    (["-b", "x", "--topics", "65"], "--topics"),
    (["-b", "x", "--partitions", "abc"], "--partitions"),
    (["-b", "x", "--rate", "0"], "--rate"),
    (["-b", "x", "--duration", "-1"], "--duration"),
    (["-b", "x", "--churn-interval", "1.5"], "--churn-interval"),
    (["-b", "x", "--prefix", "bad name"], "--prefix"),
    (["-b", "x", "--seed", "-3"], "--seed"),
    (["-b", "x", "-X", "novalue"], "-X"),
    (["-b", "x", "--nope"], "unknown option --nope"),
    (["-b", "x", "stray"], "unexpected argument"),
    (["-b", "x", "--rate"], "needs a value"),
])
def test_bad_usage_exits_64_with_a_message(args, message):
    if not os.path.exists(TRAFFIC):
        pytest.fail(f"{TRAFFIC} not built")
    r = subprocess.run([TRAFFIC, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 64
    assert message in r.stderr
    assert r.stdout == ""


def test_help_exits_0():
    r = subprocess.run([TRAFFIC, "-h"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == ""
    for opt in ("--bootstrap", "--prefix", "--topics", "--partitions", "--rate",
                "--duration", "--churn-interval", "--seed", "--quiet"):
        assert opt in r.stdout


def test_bad_client_property_is_a_usage_error():
    r = subprocess.run([TRAFFIC, "-b", "127.0.0.1:1", "-X", "no.such.property=1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 64
    assert "no.such.property" in r.stderr


# ---------------------------------------------------------------------------------
# A live run, checked with independent clients and with the bridge
# ---------------------------------------------------------------------------------
def test_live_run_topics_groups_churn_and_clean_stop(kafka, kadmin, cycle_stream, traffic,
                                                     unique):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_INVALID

    p = unique
    topics = [f"{p}-orders", f"{p}-payments", f"{p}-clicks"]
    fast, slow, stopped = f"{p}-fast", f"{p}-slow", f"{p}-stopped"

    # The bridge first: its baseline snapshot precedes every topic of the generator, so
    # each of them must show up as a topic_created event.
    s = cycle_stream(only(p))
    s.next_metrics()

    g = traffic("-b", kafka, "--prefix", p, "--topics", "3", "--partitions", "3",
                "--rate", "40", "--churn-interval", "3", "--seed", "7")
    for t in topics:
        g.wait_line(lambda line, t=t: line == f"created {t}", f"created {t}")
    g.wait_line(lambda line: line == f"created {p}-ephemeral-1", "the first ephemeral topic")
    g.wait_line(lambda line: line == f"deleted {p}-ephemeral-1", "its deletion")
    g.wait_line(lambda line: line == f"member joined {fast}", "a second member")
    g.wait_line(lambda line: line == f"member left {fast}", "the second member leaving")
    committed_line = g.wait_line(lambda line: line.startswith(f"committed {stopped} "),
                                 "the stopped group's one commit")
    g.wait_line(lambda line: line == f"closed {stopped}", "the stopped group closing")
    status = g.wait_line(lambda line: line.startswith("status "), "a status line")
    produced, errors, consumed = parse_totals(status)
    assert set(produced) == set(topics) and errors == 0
    assert set(consumed) == {fast, slow, stopped}

    # --- what the bridge saw, while the generator runs --------------------------------
    created = s.wait_for(lambda m: m["type"] == "topic_created"
                         and m["data"]["name"] == f"{p}-ephemeral-1",
                         "topic_created for the ephemeral topic")
    assert created["data"] == {"name": f"{p}-ephemeral-1", "partitions": 1}
    s.wait_for(lambda m: m["type"] == "topic_deleted"
               and m["data"] == {"name": f"{p}-ephemeral-1"},
               "topic_deleted for the ephemeral topic")
    s.wait_for(lambda m: m["type"] == "group_updated" and m["data"]["groupId"] == fast
               and m["data"]["members"] == 2, "the fast group with 2 members")
    s.wait_for(lambda m: m["type"] == "group_updated" and m["data"]["groupId"] == fast
               and m["data"]["members"] == 1, "the fast group back to 1 member")

    def lagging(m):
        if m["type"] != "metrics":
            return False
        lags = by(m["data"]["consumerLags"], "groupId")
        return (stopped in lags and lags[stopped]["totalLag"] > 0
                and lags[stopped]["state"] == "Empty" and lags[stopped]["members"] == 0
                and slow in lags and lags[slow]["totalLag"] > 0)
    s.wait_for(lagging, "lag > 0 for the slow and the stopped group")
    base_created = {m["data"]["name"]: m["data"]["partitions"] for m in s.messages
                    if m["type"] == "topic_created" and m["data"]["name"] in topics}
    assert base_created == {t: 3 for t in topics}

    # --- SIGINT: a clean, bounded stop ------------------------------------------------
    assert g.stop(signal.SIGINT) == 0, g.stderr_text()
    final = [line for line in g.lines if line.startswith("final ")]
    assert len(final) == 1, g.lines[-5:]
    produced, errors, consumed = parse_totals(final[0])
    assert errors == 0

    # Every ephemeral topic it created, it deleted (the last one possibly at exit).
    eph_created = [line.split()[1] for line in g.lines
                   if re.fullmatch(rf"created {re.escape(p)}-ephemeral-\d+", line)]
    eph_deleted = [line.split()[1] for line in g.lines
                   if re.fullmatch(rf"deleted {re.escape(p)}-ephemeral-\d+", line)]
    assert eph_created and sorted(eph_created) == sorted(eph_deleted)
    kadmin.wait_for(lambda: not any(t.startswith(f"{p}-ephemeral-")
                                    for t in kadmin.topics()),
                    "no ephemeral topic left")

    # --- independent checks with confluent-kafka --------------------------------------
    md = kadmin.admin.list_topics(timeout=30)
    for t in topics:
        assert len(md.topics[t].partitions) == 3

    c = Consumer({"bootstrap.servers": kafka, "group.id": stopped,
                  "enable.auto.commit": False})
    try:
        ends = {}
        for t in topics:
            for part in range(3):
                lo, hi = c.get_watermark_offsets(TopicPartition(t, part), timeout=30)
                assert lo == 0
                ends[(t, part)] = hi
            # The idempotent producer's acknowledged total is exactly what the log holds,
            # and seq N went to partition N % 3: the partitions hold 0,3,6.. / 1,4,.. / 2,5,..
            total = sum(ends[(t, part)] for part in range(3))
            assert total > 0
            assert total == produced[t]
            for part in range(3):
                assert ends[(t, part)] == (produced[t] - part + 2) // 3

        # <prefix>-stopped: exactly the offsets it printed, each strictly below the end.
        printed = {}
        for tok in committed_line.split()[2:]:
            topic, part, off = tok.rsplit(":", 2)
            printed[(topic, int(part))] = int(off)
        assert printed and all(topic == topics[0] for topic, _ in printed)
        got = c.committed([TopicPartition(topics[0], part) for part in range(3)], timeout=30)
        for tp in got:
            want = printed.get((tp.topic, tp.partition))
            if want is None:
                assert tp.offset == OFFSET_INVALID
            else:
                assert tp.offset == want
                assert 0 < want < ends[(tp.topic, tp.partition)]
        assert sum(want for want in printed.values()) == consumed[stopped]
    finally:
        c.close()

    # <prefix>-slow: committed far behind its topic's end (it consumed 30% of the rate).
    c = Consumer({"bootstrap.servers": kafka, "group.id": slow, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topics[0], part) for part in range(3)], timeout=30)
        slow_committed = sum(max(tp.offset, 0) for tp in got)
        assert slow_committed == consumed[slow]
        assert slow_committed < produced[topics[0]]
    finally:
        c.close()

    groups = {gm.id: gm for gm in kadmin.admin.list_groups(timeout=30)}
    assert groups[stopped].state == "Empty" and len(groups[stopped].members) == 0
    for gid in (fast, slow):
        assert groups[gid].state == "Empty"     # every member left at shutdown

    # The payload: JSON with the topic, its sequence number and a creation time taken
    # during this test.
    c = Consumer({"bootstrap.servers": kafka, "group.id": f"{p}-checker",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topics[1], 1, 0)])
        seqs = []
        deadline = time.monotonic() + WAIT_S
        while len(seqs) < 5 and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            v = json.loads(m.value())
            assert v["topic"] == topics[1]
            assert abs(v["ts"] - m.timestamp()[1]) < 60_000
            assert 1.0 <= v["amount"] <= 1000.0
            seqs.append(v["seq"])
        assert seqs == [1, 4, 7, 10, 13]
    finally:
        c.close()


def test_duration_ends_the_run_by_itself_quietly(kafka, kadmin, traffic, unique):
    p = unique
    # What a previous run left behind when the cluster was gone at its shutdown: deleted
    # at start. A name that only looks similar is not the generator's: kept.
    kadmin.create_topic(f"{p}-ephemeral-7", 1)
    kadmin.create_topic(f"{p}-ephemeral-keep", 1)
    g = traffic("-b", kafka, "--prefix", p, "--topics", "2", "--partitions", "1",
                "--rate", "20", "--duration", "4", "--churn-interval", "1", "--quiet")
    try:
        g.proc.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError("--duration did not end the run:\n" + g.stderr_text())
    g._reader.join(WAIT_S)
    assert g.proc.returncode == 0, g.stderr_text()
    assert g.lines == []                                  # --quiet: nothing on stdout
    kadmin.wait_for(lambda: f"{p}-ephemeral-7" not in kadmin.topics(), "leftover deleted")
    names = kadmin.topics()
    assert {f"{p}-orders", f"{p}-payments", f"{p}-ephemeral-keep"} <= names
    assert f"{p}-clicks" not in names                     # --topics 2
    assert [t for t in names if t.startswith(f"{p}-ephemeral-")] == [f"{p}-ephemeral-keep"]
    md = kadmin.admin.list_topics(timeout=30)
    assert len(md.topics[f"{p}-orders"].partitions) == 1
