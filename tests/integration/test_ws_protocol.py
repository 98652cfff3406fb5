"""WebSocket API and HTTP endpoints of the real binary (docs/protocol.md), with real
clients: python3-websockets for well-formed traffic and a tiny RFC 6455 client (RawWS,
below) for what websockets will not send (invalid UTF-8 in a text frame, hand-made
fragments) or do (never reading).

These tests need no Kafka: with kafka=False every collector cycle fails fast, which
still publishes a (failed) update per cycle, so metrics messages keep flowing.
No assertion depends on timing; waits are bounded by WAIT_S.
"""
import asyncio
import base64
import json
import os
import re
import signal
import socket
import struct
import time

import pytest
import websockets

from conftest import WAIT_S

KEY = "k1"
UPGRADE_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT_S * 2))


async def recv_json(ws, timeout=WAIT_S):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, type_, timeout=WAIT_S):
    """Next message of type `type_` (metrics may be interleaved with anything)."""
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        if m["type"] == type_:
            return m


async def expect_close(ws, timeout=WAIT_S):
    """Read until the server closes; returns (code, reason)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as e:
        return e.code, e.reason


# ---------------------------------------------------------------------------------
# A minimal RFC 6455 client over a plain socket.
# ---------------------------------------------------------------------------------
class RawWS:
    def __init__(self, port, path="/api/monitoring/ws", headers=None, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        if self.status != 101:
            raise ConnectionError(f"handshake status {self.status}")

    def send_frame(self, opcode, payload, fin=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return bool(b0 & 0x80), b0 & 0x0F, self._read(n)

    def wait_close(self):
        """Skip data frames until a close frame; returns (code, reason)."""
        while True:
            _fin, op, payload = self.recv_frame()
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:].decode()

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------
# Helpers over HTTP
# ---------------------------------------------------------------------------------
def prom_samples(text):
    """Parse Prometheus text 0.0.4 strictly enough to catch format errors:
    returns {(name, frozenset(labels.items())): float}."""
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
    typed = set()
    out = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter"), line
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        m = line_re.match(line)
        assert m, f"bad sample line: {line!r}"
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        assert name in typed, f"sample before its # TYPE: {line!r}"
        labels = {}
        pos = 0
        while pos < len(labels_text):
            lm = label_re.match(labels_text, pos)
            assert lm, f"bad labels: {line!r}"
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def prom_value(b, name, **labels):
    status, _, body = b.http("/metrics")
    assert status == 200
    return prom_samples(body.decode()).get((name, frozenset(labels.items())))


def wait_until(pred, what):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------------
# Authentication, path, origin, limits
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["header-bearer", "header-bare", "header-lowercase-scheme",
                                 "query", "query-percent-encoded", "subprotocol"])
def test_auth_carrier_accepted(bridge, how):
    b = bridge({"auth.api_keys": [KEY, "a+b%c/d"]})
    url, kw = b.url, {}
    if how == "header-bearer":
        kw["extra_headers"] = {"Authorization": f"Bearer {KEY}"}
    elif how == "header-bare":
        kw["extra_headers"] = {"Authorization": KEY}
    elif how == "header-lowercase-scheme":
        kw["extra_headers"] = {"Authorization": f"bearer {KEY}"}
    elif how == "query":
        url += f"?token={KEY}"
    elif how == "query-percent-encoded":
        url += "?token=a%2Bb%25c%2Fd"  # "a+b%c/d"
    elif how == "subprotocol":
        kw["subprotocols"] = [f"bearer.{KEY}", "takhin-monitoring"]

    async def go():
        async with websockets.connect(url, max_size=None, **kw) as ws:
            m = await recv_json(ws)
            assert m["type"] == "metrics"
            if how == "subprotocol":
                assert ws.subprotocol == "takhin-monitoring"
    run(go())


@pytest.mark.parametrize("how,error", [
    ("none", "missing API key"),
    ("header", "invalid API key"),
    ("basic-scheme", "missing API key"),
    ("query", "invalid API key"),
    ("subprotocol", "invalid API key"),
])
def test_auth_rejected(bridge, how, error):
    b = bridge({"auth.api_keys": [KEY]})
    path, headers, kw, url = "/api/monitoring/ws", dict(UPGRADE_HEADERS), {}, b.url
    if how == "header":
        headers["Authorization"] = "Bearer wrong-key-b81c"
        kw["extra_headers"] = {"Authorization": "Bearer wrong-key-b81c"}
    elif how == "basic-scheme":
        headers["Authorization"] = "Basic azE6eA=="
        kw["extra_headers"] = {"Authorization": "Basic azE6eA=="}
    elif how == "query":
        path += "?token=wrong-key-b81c"
        url += "?token=wrong-key-b81c"
    elif how == "subprotocol":
        headers["Sec-WebSocket-Protocol"] = "bearer.wrong-key-b81c, takhin-monitoring"
        kw["subprotocols"] = ["bearer.wrong-key-b81c", "takhin-monitoring"]

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(url, **kw):
                pass
        assert ei.value.status_code == 401
        assert ei.value.headers["WWW-Authenticate"] == "Bearer"
    run(go())
    status, hdrs, body = b.http(path, headers=headers)
    assert status == 401
    assert hdrs["www-authenticate"] == "Bearer"
    assert json.loads(body) == {"error": error}
    assert "wrong-key-b81c" not in b.stderr_text()  # presented keys are never logged


def test_subprotocol_list_without_ours_is_400(bridge):
    secret = "sekrit-key-7f3a9"
    b = bridge({"auth.api_keys": [secret]})
    status, _, body = b.http("/api/monitoring/ws", headers={
        **UPGRADE_HEADERS, "Sec-WebSocket-Protocol": f"bearer.{secret}"})
    assert status == 400
    assert json.loads(body) == {"error": 'unsupported subprotocol: offer "takhin-monitoring"'}

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(b.url, subprotocols=[f"bearer.{secret}", "other"]):
                pass
        assert ei.value.status_code == 400
    run(go())
    assert secret not in b.stderr_text()


def test_wrong_path_is_404(bridge):
    b = bridge()
    for path in ("/api/monitoring/wsx", "/", "/ws"):
        status, _, body = b.http(path, headers=UPGRADE_HEADERS)
        assert status == 404, path
        assert json.loads(body) == {"error": "not found"}

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(f"ws://127.0.0.1:{b.port}/other"):
                pass
        assert ei.value.status_code == 404
    run(go())


def test_origin_check(bridge):
    b = bridge({"server.allowed_origins": ["https://console.example"]})

    async def go():
        async with websockets.connect(b.url, origin="https://console.example") as ws:
            assert (await recv_json(ws))["type"] == "metrics"
        async with websockets.connect(b.url) as ws:  # no Origin: non-browser client
            assert (await recv_json(ws))["type"] == "metrics"
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(b.url, origin="https://evil.example"):
                pass
        assert ei.value.status_code == 403
    run(go())
    status, _, body = b.http("/api/monitoring/ws",
                             headers={**UPGRADE_HEADERS, "Origin": "https://evil.example"})
    assert status == 403
    assert json.loads(body) == {"error": "origin not allowed"}


def test_connection_limit(bridge):
    b = bridge({"server.max_clients": 2})

    async def go():
        a = await websockets.connect(b.url)
        c = await websockets.connect(b.url)
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            async with websockets.connect(b.url):
                pass
        assert ei.value.status_code == 503
        status, _, body = b.http("/api/monitoring/ws", headers=UPGRADE_HEADERS)
        assert status == 503
        assert json.loads(body) == {"error": "too many connections"}
        await a.close()
        # once the server has seen the close, a slot is free again
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                d = await websockets.connect(b.url)
                break
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 503
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert (await recv_json(d))["type"] == "metrics"
        await c.close()
        await d.close()
    run(go())


# ---------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------
def test_first_metrics_without_waiting_for_a_tick(bridge):
    # One cycle at start, then none for 10 minutes: a client connecting after the
    # first cycle must still get metrics at once.
    b = bridge({"kafka.poll_interval_ms": 600000, "collector.stale_after_ms": 1200000})
    wait_until(lambda: (prom_value(b, "takhin_collector_cycles_total", result="failed")
                        or 0) >= 1, "the first cycle")

    async def go():
        for _ in range(2):
            async with websockets.connect(b.url) as ws:
                m = await recv_json(ws, timeout=WAIT_S)
                assert m["type"] == "metrics"
                assert isinstance(m["timestamp"], int)
                d = m["data"]
                for k in ("throughput", "latency", "topicStats", "consumerLags",
                          "clusterHealth"):
                    assert k in d
                assert d["topicStats"] == [] and d["consumerLags"] == []
    run(go())


def test_ping_pong(bridge):
    b = bridge()

    async def go():
        async with websockets.connect(b.url) as ws:
            for msg in ({"type": "ping", "timestamp": 1704225600},
                        {"type": "ping", "timestamp": time.time()},
                        {"type": "ping"},
                        {"type": "ping", "timestamp": "soon"}):
                await ws.send(json.dumps(msg))
                before = int(time.time())
                pong = await recv_until(ws, "pong")
                assert set(pong) == {"type", "timestamp"}
                assert isinstance(pong["timestamp"], int)
                assert before - 5 <= pong["timestamp"] <= int(time.time()) + 5
            # a message split over three fragments is reassembled
            await ws.send(['{"type"', ':"pi', 'ng"}'])
            assert (await recv_until(ws, "pong"))["type"] == "pong"
    run(go())


@pytest.mark.parametrize("payload,code,reason", [
    ("{nope", 1008, "invalid JSON"),
    ('{"type":"ping"} trailing', 1008, "invalid JSON"),
    ("[1,2]", 1008, "expected a JSON object"),
    ('"ping"', 1008, "expected a JSON object"),
    ("{}", 1008, "missing type"),
    ('{"type":1}', 1008, "type must be a string"),
    ('{"type":"bogus"}', 1008, "unknown type: bogus"),
    ('{"type":"' + "x" * 200 + '"}', 1008, "unknown type: " + "x" * 64 + "..."),
    (b'{"type":"ping"}', 1003, "binary frames not supported"),
    ('{"type":"ping","pad":"' + "x" * 5000 + '"}', 1009, "message too big"),
])
def test_malformed_input_closes(bridge, payload, code, reason):
    b = bridge()

    async def go():
        async with websockets.connect(b.url) as ws:
            await recv_json(ws)
            await ws.send(payload)
            assert await expect_close(ws) == (code, reason)
    run(go())
    assert wait_for_close_count(b, code) >= 1


def wait_for_close_count(b, code):
    wait_until(lambda: (prom_value(b, "takhin_ws_closes_total", code=str(code)) or 0) >= 1,
               f"close {code} counted")
    return prom_value(b, "takhin_ws_closes_total", code=str(code))


def test_invalid_utf8_text_frame_closes_1007(bridge):
    b = bridge()
    ws = RawWS(b.port)
    try:
        ws.send_frame(0x1, b'{"type":"ping","x":"\xff\xfe"}')
        assert ws.wait_close() == (1007, "invalid UTF-8")
    finally:
        ws.close()
    assert wait_for_close_count(b, 1007) == 1


def test_utf8_character_split_across_fragments_is_fine(bridge):
    b = bridge()
    ws = RawWS(b.port)
    try:
        euro = "\u20ac".encode()  # 3 bytes, split 1 + 2 over two fragments
        ws.send_frame(0x1, b'{"type":"ping","x":"' + euro[:1], fin=False)
        ws.send_frame(0x0, euro[1:] + b'"}', fin=True)
        while True:
            _fin, op, payload = ws.recv_frame()
            assert op != 0x8, payload
            if op == 0x1 and json.loads(payload)["type"] == "pong":
                break
    finally:
        ws.close()


def test_fragmented_oversize_message_closes_1009(bridge):
    b = bridge({"server.max_message_bytes": 1000})
    ws = RawWS(b.port)
    try:
        ws.send_frame(0x1, b'{"type":"ping","pad":"' + b"x" * 400, fin=False)
        ws.send_frame(0x0, b"x" * 400, fin=False)
        ws.send_frame(0x0, b"x" * 400 + b'"}', fin=True)
        assert ws.wait_close() == (1009, "message too big")
    finally:
        ws.close()


def test_fragmented_message_within_limit(bridge):
    b = bridge({"server.max_message_bytes": 1000})
    ws = RawWS(b.port)
    try:
        ws.send_frame(0x1, b'{"type":"pi', fin=False)
        ws.send_frame(0x9, b"hello")  # a control frame between fragments is allowed
        ws.send_frame(0x0, b'ng","pad":"' + b"y" * 800 + b'"}', fin=True)
        while True:
            _fin, op, payload = ws.recv_frame()
            if op == 0x1 and json.loads(payload)["type"] == "pong":
                break
    finally:
        ws.close()


def test_subscriptions(bridge):
    b = bridge()

    async def go():
        async with websockets.connect(b.url) as ws:
            assert (await recv_json(ws))["type"] == "metrics"
            await ws.send(json.dumps({"type": "subscribe", "data": "topic:orders-*"}))
            ack = await recv_until(ws, "subscribed")
            assert ack["data"] == "topic:orders-*"
            assert isinstance(ack["timestamp"], int)
            # a fresh metrics message (narrowed to the new set) follows the ack at once
            assert (await recv_until(ws, "metrics"))["type"] == "metrics"
            await ws.send(json.dumps({"type": "subscribe", "data": "group:billing"}))
            assert (await recv_until(ws, "subscribed"))["data"] == "group:billing"
            await ws.send(json.dumps({"type": "unsubscribe", "data": "topic:orders-*"}))
            assert (await recv_until(ws, "unsubscribed"))["data"] == "topic:orders-*"
            # unsubscribing from something not subscribed is not an error
            await ws.send(json.dumps({"type": "unsubscribe", "data": "topic:never"}))
            assert (await recv_until(ws, "unsubscribed"))["data"] == "topic:never"

            # invalid items earn an error reply; the connection stays open
            for bad in ("orders", "topic:", "queue:x", 42, None):
                msg = {"type": "subscribe"}
                if bad is not None:
                    msg["data"] = bad
                await ws.send(json.dumps(msg))
                err = await recv_until(ws, "error")
                assert err["data"]["code"] == "invalid_subscription"
                assert isinstance(err["data"]["message"], str) and err["data"]["message"]
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_until(ws, "pong"))["type"] == "pong"
    run(go())


def test_rate_limit(bridge):
    b = bridge({"server.client_messages_per_second": 1, "server.client_messages_burst": 3})

    async def go():
        async with websockets.connect(b.url) as ws:
            for _ in range(50):
                await ws.send('{"type":"ping"}')
            pongs = 0
            try:
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                    pongs += m["type"] == "pong"
            except websockets.ConnectionClosed as e:
                assert (e.code, e.reason) == (1008, "rate limit exceeded")
            assert pongs < 50  # replies still queued when the limit trips are dropped
    run(go())


# ---------------------------------------------------------------------------------
# HTTP endpoints
# ---------------------------------------------------------------------------------
def test_health_and_readiness_without_kafka(bridge):
    b = bridge({"auth.api_keys": [KEY]})  # neither needs a key
    status, hdrs, body = b.http("/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert hdrs["content-type"] == "application/json"
    status, _, body = b.http("/readyz")
    assert status == 503
    doc = json.loads(body)
    assert doc["status"] == "not ready"
    assert doc["reason"] in ("no collector cycle yet", "no complete collector cycle yet")
    status, hdrs, body = b.http("/healthz", method="POST")
    assert status == 405 and hdrs["allow"] == "GET"
    status, _, body = b.http("/no/such/path")
    assert (status, json.loads(body)) == (404, {"error": "not found"})
    status, _, body = b.http("/api/monitoring/ws")  # no Upgrade header
    assert status == 426


def test_metrics_rest_endpoint_auth(bridge):
    b = bridge({"auth.api_keys": [KEY]})
    status, hdrs, body = b.http("/api/monitoring/metrics")
    assert status == 401 and hdrs["www-authenticate"] == "Bearer"
    assert json.loads(body) == {"error": "missing API key"}
    status, _, body = b.http("/api/monitoring/metrics", headers={"Authorization": "Bearer x"})
    assert status == 401 and json.loads(body) == {"error": "invalid API key"}
    for kw in ({"headers": {"Authorization": f"Bearer {KEY}"}}, {}):
        path = "/api/monitoring/metrics" + ("" if kw else f"?token={KEY}")
        status, hdrs, body = b.http(path, **kw)
        assert status == 200
        data = json.loads(body)
        assert "type" not in data  # the data object, without the envelope
        for k in ("throughput", "latency", "topicStats", "consumerLags", "clusterHealth"):
            assert k in data


def test_prometheus_endpoint(bridge):
    b = bridge({"auth.api_keys": [KEY]})

    async def go():
        async with websockets.connect(b.url, extra_headers={"Authorization": KEY}) as ws:
            await recv_json(ws)
            await ws.send('{"type":"ping"}')
            await recv_until(ws, "pong")
            status, hdrs, body = b.http("/metrics")  # no key needed by default
            assert status == 200
            assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
            s = prom_samples(body.decode())
            assert s[("takhin_ws_clients", frozenset())] == 1
            assert s[("takhin_ws_connections_total", frozenset())] == 1
            assert s[("takhin_ws_messages_sent_total", frozenset({("type", "pong")}))] == 1
            assert s[("takhin_ws_messages_sent_total", frozenset({("type", "metrics")}))] >= 1
            assert s[("takhin_collector_up", frozenset())] == 0
            assert s[("takhin_collector_cycles_total", frozenset({("result", "ok")}))] == 0
            assert ("takhin_cluster_brokers", frozenset()) not in s  # never measured
    run(go())
    assert b.http("/healthz")[0] == 200
    s = prom_samples(b.http("/metrics")[2].decode())
    assert s[("takhin_http_requests_total",
              frozenset({("path", "/healthz"), ("status", "200")}))] == 1


def test_prometheus_endpoint_can_require_auth(bridge):
    b = bridge({"auth.api_keys": [KEY], "server.metrics_require_auth": True})
    status, hdrs, _ = b.http("/metrics")
    assert status == 401 and hdrs["www-authenticate"] == "Bearer"
    status, _, body = b.http("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert status == 200
    prom_samples(body.decode())


def test_tls(bridge, tmp_path):
    import shutil
    import ssl
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    b = bridge({"server.tls_cert_file": str(cert), "server.tls_key_file": str(key)})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(cert))
    ctx.check_hostname = False

    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", b.port, context=ctx, timeout=WAIT_S)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())) == (200, {"status": "ok"})
    assert r.version == 11  # an HTTP/1.1 response
    conn.close()

    async def go():
        url = f"wss://127.0.0.1:{b.port}/api/monitoring/ws"
        async with websockets.connect(url, ssl=ctx) as ws:
            assert (await recv_json(ws))["type"] == "metrics"
            await ws.send('{"type":"ping"}')
            assert (await recv_until(ws, "pong"))["type"] == "pong"
    run(go())


# ---------------------------------------------------------------------------------
# Slow clients and shutdown
# ---------------------------------------------------------------------------------
def flood_pings_until(b, ws, pred, what):
    """Send pings from a client that never reads until pred() holds. Kernel socket
    buffers absorb megabytes of pongs and metrics first, so the amount needed is not
    known in advance: send in batches and check between them."""
    batch = b"".join(ws_frame(0x1, b'{"type":"ping"}') for _ in range(2000))
    deadline = time.monotonic() + WAIT_S
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        try:
            ws.sock.sendall(batch)
        except OSError:
            break  # the server closed us
        time.sleep(0.05)  # stay well under the 100000/s rate limit
    wait_until(pred, what)


def ws_frame(opcode, payload):
    mask = os.urandom(4)
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


def test_stalled_reader_does_not_hold_back_others(bridge):
    b = bridge({"kafka.poll_interval_ms": 100, "server.max_queued_events": 1000000,
                "server.client_messages_per_second": 100000,
                "server.client_messages_burst": 100000})
    stalled = RawWS(b.port, rcvbuf=4096)  # never reads
    try:
        # Until its socket is full, nothing is superseded; then its metrics slot is
        # replaced each cycle (latest wins) instead of growing a backlog.
        flood_pings_until(b, stalled, lambda: (prom_value(b, "takhin_ws_dropped_metrics_total")
                                               or 0) > 0, "dropped metrics")

        async def go():
            async with websockets.connect(b.url) as ws:
                # the healthy client gets fresh metrics, one per cycle, meanwhile
                seen = []
                while len(seen) < 5:
                    m = await recv_json(ws)
                    if m["type"] == "metrics":
                        seen.append(m["data"]["collector"]["cyclesFailed"])
                assert seen == sorted(seen) and seen[-1] > seen[0]
                assert prom_value(b, "takhin_ws_clients") == 2
        run(go())
        assert prom_value(b, "takhin_ws_closes_total", code="4008") is None
    finally:
        stalled.close()


def test_slow_consumer_is_closed_4008(bridge):
    b = bridge({"kafka.poll_interval_ms": 100, "server.max_queued_events": 4,
                "server.client_messages_per_second": 100000,
                "server.client_messages_burst": 100000})
    slow = RawWS(b.port, rcvbuf=4096)
    try:
        # Pings are answered with pongs, which queue (in order) once the socket is full;
        # the fifth queued message closes the client.
        flood_pings_until(b, slow, lambda: (prom_value(b, "takhin_ws_closes_total", code="4008")
                                            or 0) >= 1, "slow consumer closed with 4008")
        assert prom_value(b, "takhin_ws_clients") in (0, 1)
        wait_until(lambda: prom_value(b, "takhin_ws_clients") == 0, "slow consumer gone")
    finally:
        slow.close()


def test_sigterm_closes_every_client_with_1001(bridge):
    b = bridge({"auth.api_keys": [KEY]})
    auth = {"Authorization": f"Bearer {KEY}"}

    async def go():
        clients = [await websockets.connect(b.url, extra_headers=auth) for _ in range(3)]
        for ws in clients:
            assert (await recv_json(ws))["type"] == "metrics"
        # some traffic first, so that shutdown (and, under ASan, the leak check at exit)
        # covers subscriptions, queued replies and shared frames
        await clients[0].send(json.dumps({"type": "subscribe", "data": "topic:a*"}))
        await clients[1].send(json.dumps({"type": "subscribe", "data": "group:g"}))
        for ws in clients:
            await ws.send('{"type":"ping"}')
        await recv_until(clients[2], "pong")
        assert b.http("/metrics", headers=auth)[0] == 200
        assert b.http("/api/monitoring/metrics", headers=auth)[0] == 200
        b.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            assert await expect_close(ws) == (1001, "server shutdown")
    run(go())
    assert b.stop() == 0


def test_shutdown_deadline_with_unresponsive_client(bridge):
    b = bridge({"server.shutdown_timeout_ms": 1000})
    mute = RawWS(b.port)  # never reads, never answers the close

    async def go():
        async with websockets.connect(b.url) as ws:
            assert (await recv_json(ws))["type"] == "metrics"
            b.proc.send_signal(signal.SIGTERM)
            assert await expect_close(ws) == (1001, "server shutdown")
    try:
        run(go())
        assert b.stop() == 0  # after the deadline at the latest
    finally:
        mute.close()
