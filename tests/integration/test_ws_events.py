"""Events and subscription filtering end to end: a real Kafka (scripts/local-kafka),
the real binary, real WebSocket clients (docs/protocol.md, "Subscriptions").

Ordering used instead of timing: the server sends a cycle's events before that cycle's
metrics message, so once a client has received a metrics message from a cycle at or
after the one that produced an event (data.collector.cyclesOk), it will never receive
that event later. Waits are bounded by WAIT_S.
"""
import asyncio
import json
import time

import websockets

from conftest import WAIT_S


async def recv_json(ws, timeout=WAIT_S):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def collect_until(ws, pred, what, log):
    """Append every message to `log` until pred(msg) holds; returns that message."""
    deadline = time.monotonic() + WAIT_S * 2
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {what}"
        m = await recv_json(ws, left)
        log.append(m)
        if pred(m):
            return m


def is_metrics_at_least(cycle):
    return lambda m: m["type"] == "metrics" and m["data"]["collector"]["cyclesOk"] >= cycle


def test_topic_events_follow_subscriptions(bridge, kadmin, unique):
    b = bridge({"kafka.poll_interval_ms": 500}, kafka=True)
    topic = f"{unique}-orders"

    async def go():
        everything = await websockets.connect(b.url, max_size=None)
        mine = await websockets.connect(b.url, max_size=None)
        other = await websockets.connect(b.url, max_size=None)
        logs = {"everything": [], "mine": [], "other": []}
        for name, ws, item in (("mine", mine, f"topic:{unique}-*"),
                               ("other", other, "topic:no-such-prefix-*")):
            await ws.send(json.dumps({"type": "subscribe", "data": item}))
            await collect_until(ws, lambda m: m["type"] == "subscribed", "ack", logs[name])
            logs[name].clear()  # the connect-time metrics came before the subscription
        # the baseline must exist before the topic does (no events for what exists at
        # start): wait for a complete cycle
        base = await collect_until(everything, lambda m: m["type"] == "metrics"
                                   and m["data"]["collector"]["cyclesOk"] >= 1,
                                   "a complete cycle", logs["everything"])
        assert base["data"]["collector"]["error"] is None

        await asyncio.get_running_loop().run_in_executor(None, kadmin.create_topic, topic, 3)

        created = {"type": "topic_created", "data": {"name": topic, "partitions": 3}}
        for name, ws in (("everything", everything), ("mine", mine)):
            ev = await collect_until(ws, lambda m: m["type"] == "topic_created"
                                     and m["data"]["name"] == topic, "topic_created",
                                     logs[name])
            assert {k: ev[k] for k in ("type", "data")} == created
            assert isinstance(ev["timestamp"], int)
        # the cycle that reported it, as seen in the next metrics message
        after = await collect_until(mine, lambda m: m["type"] == "metrics", "metrics",
                                    logs["mine"])
        cycle = after["data"]["collector"]["cyclesOk"]
        names = [t["name"] for t in after["data"]["topicStats"]]
        assert names == [topic]  # narrowed to the subscription
        assert after["data"]["topicStats"][0]["partitions"] == 3
        assert after["data"]["consumerLags"] == []  # no group: items

        # the other subscriber reaches the same cycle without ever seeing the event
        await collect_until(other, is_metrics_at_least(cycle), "metrics of that cycle",
                            logs["other"])
        assert not [m for m in logs["other"] if m["type"].startswith("topic_")]
        for m in logs["other"]:
            if m["type"] == "metrics":
                assert m["data"]["topicStats"] == []
        # and the unfiltered client sees the topic among all the others
        m = await collect_until(everything, is_metrics_at_least(cycle), "metrics",
                                logs["everything"])
        assert topic in [t["name"] for t in m["data"]["topicStats"]]

        await asyncio.get_running_loop().run_in_executor(None, kadmin.delete_topic, topic)
        ev = await collect_until(mine, lambda m: m["type"] == "topic_deleted"
                                 and m["data"]["name"] == topic, "topic_deleted",
                                 logs["mine"])
        assert ev["data"] == {"name": topic}
        for ws in (everything, mine, other):
            await ws.close()
    asyncio.run(go())


def test_group_lag_and_group_events(bridge, kadmin, unique):
    b = bridge({"kafka.poll_interval_ms": 500}, kafka=True)
    topic, group = f"{unique}-t", f"{unique}-g"
    kadmin.create_topic(topic, 2)
    kadmin.produce(topic, {0: 10, 1: 4})

    async def go():
        ws = await websockets.connect(b.url, max_size=None)
        log = []
        await ws.send(json.dumps({"type": "subscribe", "data": f"group:{unique}-*"}))
        await collect_until(ws, lambda m: m["type"] == "subscribed", "ack", log)
        await collect_until(ws, is_metrics_at_least(1), "a complete cycle", log)

        await asyncio.get_running_loop().run_in_executor(
            None, kadmin.commit, group, topic, {0: 7, 1: 4})

        ev = await collect_until(ws, lambda m: m["type"] == "group_updated"
                                 and m["data"]["groupId"] == group, "group_updated", log)
        assert ev["data"] == {"groupId": group, "state": "Empty", "members": 0}

        def has_lag(m):
            return m["type"] == "metrics" and any(
                g["groupId"] == group and g["topicLags"] for g in m["data"]["consumerLags"])
        m = await collect_until(ws, has_lag, "the group's lag", log)
        d = m["data"]
        assert d["topicStats"] == []  # only group: items: no topic matches
        (g,) = [g for g in d["consumerLags"] if g["groupId"] == group]
        assert g["totalLag"] == 3  # (10 - 7) + (4 - 4)
        (t,) = g["topicLags"]
        assert t["topic"] == topic and t["totalLag"] == 3
        parts = {p["partition"]: (p["currentOffset"], p["logEndOffset"], p["lag"])
                 for p in t["partitionLags"]}
        assert parts == {0: (7, 10, 3), 1: (4, 4, 0)}
        await ws.close()
    asyncio.run(go())

    # the same numbers on the Prometheus endpoint
    from test_ws_protocol import prom_samples
    s = prom_samples(b.http("/metrics")[2].decode())
    assert s[("takhin_consumer_group_lag_total", frozenset({("group", group)}))] == 3
    assert s[("takhin_consumer_group_lag", frozenset(
        {("group", group), ("topic", topic), ("partition", "0")}))] == 3
    assert s[("takhin_topic_partitions", frozenset({("topic", topic)}))] == 2
    assert s[("takhin_topic_messages", frozenset({("topic", topic)}))] == 14
    assert s[("takhin_collector_up", frozenset())] == 1
    status, _, body = b.http("/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
