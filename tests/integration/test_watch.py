"""scripts/watch.py, the live view of the README's run command, against the real bridge
and the real local Kafka: it authenticates with the key it is given, prints one line per
message, shows the canary's real latency percentiles (not n/a once probes are back), the
counts the test created, and the events of a topic the test creates.
"""
import os
import queue
import re
import subprocess
import threading

from conftest import SOURCE_DIR, WAIT_S, only

WATCH = os.path.join(SOURCE_DIR, "scripts", "watch.py")

METRICS_LINE = re.compile(
    r"^\d\d:\d\d:\d\d metrics topics=(\d+) partitions=(\d+) groups=(\d+) "
    r"produce=(\S+) consume=(\S+) latency p50/p99 produce=(\S+) fetch=(\S+) top-lag: (.*)$")


class Lines:
    """The watcher's stdout, line by line, on a reader thread."""

    def __init__(self, proc):
        self.q = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait_for(self, pred, what, seen):
        while True:
            try:
                line = self.q.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no line for {WAIT_S} s waiting for {what}:\n"
                                     + "\n".join(seen[-20:]))
            if line is None:
                raise AssertionError(f"watch.py ended waiting for {what}:\n" + "\n".join(seen))
            seen.append(line)
            if pred(line):
                return line


def test_watch_shows_counts_latency_and_events(kadmin, bridge, unique):
    topic = unique + "-a"
    kadmin.create_topic(topic, 3)
    kadmin.produce(topic, {0: 5, 2: 2})
    kadmin.commit(unique + "-g", topic, {0: 1})
    b = bridge({**only(unique), "auth.api_keys": ["watch-key"], "canary.enabled": True,
                "canary.topic": "__" + unique.replace("-", "_") + "_canary",
                "canary.interval_ms": 200}, kafka=True)
    proc = subprocess.Popen(["/usr/bin/python3", WATCH, b.url, "--key", "watch-key"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        lines = Lines(proc)

        def measured(line):
            m = METRICS_LINE.match(line)
            return bool(m) and m.group(1) == "1" and m.group(6) != "n/a" and m.group(7) != "n/a"

        m = METRICS_LINE.match(lines.wait_for(measured, "a metrics line with latencies", seen))
        assert m.group(1, 2, 3) == ("1", "3", "1")
        # the group committed 1 of partition 0's 5 messages: lag 4; partition 2's 2
        # messages have no committed offset, so they are not lag (docs/protocol.md)
        assert m.group(8) == f"{unique}-g=4"
        for side in (m.group(6), m.group(7)):
            p50, p99 = (float(x) for x in re.fullmatch(r"([\d.]+)/([\d.]+)ms", side).groups())
            assert 0 < p50 <= p99 < 10000

        kadmin.create_topic(unique + "-b", 2)
        lines.wait_for(lambda l: re.fullmatch(
            rf"\d\d:\d\d:\d\d topic_created {re.escape(unique)}-b partitions=2", l) is not None,
            "the topic_created line", seen)
    finally:
        proc.terminate()
        try:
            proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert "Traceback" not in err, err
