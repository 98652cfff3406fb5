"""Integration test harness: the real takhin-bridge binary, a real Apache Kafka
(scripts/local-kafka), real clients (confluent-kafka for Kafka, websockets for WS).

Fixtures
  kafka        session: bootstrap address of the suite's own local Kafka, started by
               scripts/local-kafka in a private run dir on free ports (exported as
               TB_KAFKA_RUN_DIR, KAFKA_PORT, KAFKA_CONTROLLER_PORT) and stopped at the
               end of the session (by pid, by that script), unless TB_KAFKA_BOOTSTRAP
               names an already running broker.
  kadmin       session: a KafkaAdmin helper bound to `kafka` (topics, produce, commit).
  bridge       function: factory; bridge(overrides={}, kafka=False) starts the daemon
               with a generated config and returns a Bridge. Every bridge started is
               stopped at teardown, also when the test fails.
  run_cycles   function: run `takhin-bridge --cycles N` and return parsed JSON lines.
  unique       function: a unique name prefix for topics/groups of one test.

Config overrides use dotted option paths: {"auth.api_keys": ["k"], "server.port": 0}.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

SOURCE_DIR = os.environ.get("TB_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("TB_BINARY") or os.path.join(SOURCE_DIR, "build", "takhin-bridge")
LOCAL_KAFKA = os.path.join(SOURCE_DIR, "scripts", "local-kafka")

# Generous bounds for WAITING (never asserted as performance): a shared 2-core machine
# under sanitizers can be slow.
WAIT_S = float(os.environ.get("TB_TEST_WAIT_S", "60"))


# ---------------------------------------------------------------------------------
# libconfig writer
# ---------------------------------------------------------------------------------
def _cfg_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_cfg_value(x) for x in v) + "]"
    raise TypeError(f"unsupported config value {v!r}")


def write_config(path, settings):
    """settings: dotted path -> python value. Groups are emitted in insertion order."""
    groups = {}
    for key, value in settings.items():
        group, leaf = key.split(".", 1)
        groups.setdefault(group, {})[leaf] = value
    lines = []
    for group, items in groups.items():
        lines.append(f"{group} = {{")
        for leaf, value in items.items():
            lines.append(f"  {leaf} = {_cfg_value(value)};")
        lines.append("};")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------
def _port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _broker_ports():
    """Two adjacent free ports below the ephemeral range (32768+), so that no outgoing
    connection can take them between this check and the broker's bind."""
    for _ in range(200):
        port = random.randrange(20000, 32000, 2)
        if _port_free(port) and _port_free(port + 1):
            return port, port + 1
    raise RuntimeError("no two adjacent free ports in 20000-32000")


def kafka_ctl(command, timeout=180):
    """Run `scripts/local-kafka COMMAND` for the suite's broker (bootstrap, pause,
    resume) and return its stdout; on failure, fail the test with the script's whole
    output, which ends with the broker log's tail (the run dir, log included, is
    removed at the end of the session)."""
    r = subprocess.run([LOCAL_KAFKA, command], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"scripts/local-kafka {command} exited {r.returncode}:\n"
                    f"{r.stdout}{r.stderr}", pytrace=False)
    return r.stdout.strip()


@pytest.fixture(scope="session")
def kafka():
    """The suite's OWN broker: its own run dir and ports, never the default 9092 one a
    developer's scripts/run-local may be using, nor another test run's. The environment
    variables are exported so that tests calling scripts/local-kafka (pause, resume,
    status) address this broker."""
    preset = os.environ.get("TB_KAFKA_BOOTSTRAP")
    if preset:
        yield preset
        return
    saved = {k: os.environ.get(k)
             for k in ("TB_KAFKA_RUN_DIR", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT")}
    parent = tempfile.mkdtemp(prefix="tb-test-kafka-")
    os.environ["TB_KAFKA_RUN_DIR"] = os.path.join(parent, "run")
    try:
        failures = []
        for _attempt in range(3):  # a port taken by someone else between check and bind
            port, cport = _broker_ports()
            os.environ["KAFKA_PORT"] = str(port)
            os.environ["KAFKA_CONTROLLER_PORT"] = str(cport)
            r = subprocess.run([LOCAL_KAFKA, "start"], capture_output=True, text=True,
                               timeout=600)
            if r.returncode == 0:
                break
            failures.append(f"ports {port}/{cport}:\n{r.stdout}\n{r.stderr}")
            subprocess.run([LOCAL_KAFKA, "stop"], capture_output=True, timeout=120)
        else:
            pytest.fail("scripts/local-kafka start failed 3 times:\n" + "\n".join(failures))
        yield kafka_ctl("bootstrap")
    finally:
        # idempotent: stops the broker by its pid if one runs, removes its run dir
        subprocess.run([LOCAL_KAFKA, "stop"], capture_output=True, timeout=120)
        shutil.rmtree(parent, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class KafkaAdmin:
    """Test-side Kafka client: everything the test asserts is computed from what this
    helper itself produced and committed, independently of the bridge."""

    def __init__(self, bootstrap):
        from confluent_kafka.admin import AdminClient
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topic(self, name, partitions):
        from confluent_kafka.admin import NewTopic
        fut = self.admin.create_topics([NewTopic(name, partitions, 1)],
                                       operation_timeout=30)[name]
        fut.result(timeout=60)
        self.wait_for(lambda: name in self.topics(), f"topic {name} visible")

    def delete_topic(self, name):
        fut = self.admin.delete_topics([name], operation_timeout=30)[name]
        fut.result(timeout=60)
        self.wait_for(lambda: name not in self.topics(), f"topic {name} gone")

    def topics(self):
        return set(self.admin.list_topics(timeout=30).topics)

    def produce(self, topic, counts):
        """counts: {partition: n}. Returns after every message is acknowledged."""
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all",
                      "linger.ms": 5})
        errors = []

        def cb(err, _msg):
            if err:
                errors.append(err)
        for part, n in counts.items():
            for i in range(n):
                p.produce(topic, value=b"m%d" % i, partition=part, on_delivery=cb)
                if i % 1000 == 999:
                    p.poll(0)
        remaining = p.flush(60)
        assert remaining == 0 and not errors, (remaining, errors)

    def commit(self, group, topic, offsets):
        """Commit exact offsets {partition: offset} for `group` without joining it
        (a simple, memberless commit: the group is Empty with these offsets)."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                     asynchronous=False)
        finally:
            c.close()

    @staticmethod
    def wait_for(pred, what, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def kadmin(kafka):
    return KafkaAdmin(kafka)


@pytest.fixture
def unique(request):
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    return f"t-{base}-{uuid.uuid4().hex[:6]}"


# ---------------------------------------------------------------------------------
# The bridge
# ---------------------------------------------------------------------------------
def base_settings(bootstrap):
    return {
        "kafka.bootstrap_servers": bootstrap,
        "kafka.poll_interval_ms": 1000,
        "kafka.request_timeout_ms": 3000,
        "server.address": "127.0.0.1",
        "server.port": 0,
        "log.level": "info",
    }


class Bridge:
    def __init__(self, settings, workdir):
        self.workdir = workdir
        self.config = os.path.join(workdir, "bridge.cfg")
        write_config(self.config, settings)
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self._stderr = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen([BINARY, "-c", self.config], stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, stdin=subprocess.DEVNULL)
        self.port = None
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            m = re.search(r"listening on \S+:(\d+)", self.stderr_text())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            self.kill()
            raise AssertionError("bridge did not start listening:\n" + self.stderr_text())
        self.url = f"ws://127.0.0.1:{self.port}/api/monitoring/ws"

    def stderr_text(self):
        with open(self.stderr_path) as f:
            return f.read()

    def http(self, path, headers=None, method="GET"):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM, timeout=WAIT_S):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("bridge did not stop on signal:\n" + self.stderr_text())
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()
        self._stderr.close()


@pytest.fixture
def bridge(request, tmp_path):
    started = []

    def start(overrides=None, kafka=False):
        if kafka:
            bootstrap = request.getfixturevalue("kafka")
        else:
            bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens: every cycle fails
        settings = base_settings(bootstrap)
        settings.update(overrides or {})
        workdir = tempfile.mkdtemp(dir=tmp_path)
        b = Bridge(settings, workdir)
        started.append(b)
        return b

    yield start
    for b in started:
        b.close()


@pytest.fixture
def run_cycles(request, tmp_path):
    """run_cycles(n, overrides) -> (returncode, [json messages], stderr)."""
    def run(n, overrides=None, kafka=True, timeout=WAIT_S * 3):
        bootstrap = request.getfixturevalue("kafka") if kafka else f"127.0.0.1:{free_port()}"
        settings = base_settings(bootstrap)
        settings.update(overrides or {})
        cfg = os.path.join(tempfile.mkdtemp(dir=tmp_path), "bridge.cfg")
        write_config(cfg, settings)
        r = subprocess.run([BINARY, "-c", cfg, "--cycles", str(n)], capture_output=True,
                           text=True, timeout=timeout)
        msgs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        return r.returncode, msgs, r.stderr
    return run


def run_bridge(*args, timeout=60):
    """Run the binary with arguments; returns CompletedProcess (text)."""
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------
# Streaming collector output (`takhin-bridge --cycles N`), read as it is printed
# ---------------------------------------------------------------------------------
class CycleStream:
    """Runs `takhin-bridge --cycles N` and collects its JSON lines as they appear."""

    def __init__(self, settings, workdir, cycles):
        import queue
        self.config = os.path.join(workdir, "bridge.cfg")
        write_config(self.config, settings)
        self.stderr_path = os.path.join(workdir, "stderr.log")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([BINARY, "-c", self.config, "--cycles", str(cycles)],
                                     stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, text=True)
        self.messages = []          # every message read so far, in order
        self._q = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.strip():
                self._q.put(json.loads(line))
        self._q.put(None)

    def next(self, timeout=WAIT_S):
        """The next message (any type); AssertionError on timeout or end of stream."""
        import queue
        try:
            m = self._q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message from the bridge within %ss:\n%s"
                                 % (timeout, self.stderr_text()))
        if m is None:
            self._q.put(None)
            raise AssertionError("bridge output ended:\n" + self.stderr_text())
        self.messages.append(m)
        return m

    def next_metrics(self, timeout=WAIT_S):
        while True:
            m = self.next(timeout)
            if m["type"] == "metrics":
                return m

    def wait_for(self, pred, what, timeout=WAIT_S):
        """Read messages until pred(message) is true; returns that message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; got "
                                     f"{[m['type'] for m in self.messages[-20:]]}")
            m = self.next(left)
            if pred(m):
                return m

    def stderr_text(self):
        with open(self.stderr_path) as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


@pytest.fixture
def cycle_stream(request, tmp_path):
    streams = []

    def start(overrides=None, cycles=1000):
        settings = base_settings(request.getfixturevalue("kafka"))
        settings.update(overrides or {})
        s = CycleStream(settings, tempfile.mkdtemp(dir=tmp_path), cycles)
        streams.append(s)
        return s

    yield start
    for s in streams:
        s.close()


def only(prefix):
    """Collector filters that limit a bridge to one test's topics and groups."""
    return {"collector.topics_include": [prefix + "*"],
            "collector.groups_include": [prefix + "*"]}
