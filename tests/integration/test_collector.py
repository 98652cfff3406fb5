"""The collector against a real Apache Kafka: exact lag, rates, synthesized events, and
an outage that must not look like changes (collector issue).

Every expected value is computed here from what the test itself produced and committed.
"""
import threading
import time

import pytest

from conftest import WAIT_S, kafka_ctl, only


def by(items, key):
    return {x[key]: x for x in items}


def events(messages):
    return [m for m in messages if m["type"] != "metrics"]


def test_lag_totals_and_counts_are_exact(kadmin, run_cycles, unique):
    t, g = unique + "-orders", unique + "-g"
    kadmin.create_topic(t, 3)
    kadmin.produce(t, {0: 10, 1: 20, 2: 5})
    kadmin.commit(g, t, {0: 4, 1: 20})           # nothing committed on partition 2

    rc, msgs, err = run_cycles(1, only(unique))
    assert rc == 0, err
    assert events(msgs) == []                     # the first snapshot is a baseline
    (m,) = [x for x in msgs if x["type"] == "metrics"]
    assert isinstance(m["timestamp"], int)
    d = m["data"]

    topic = by(d["topicStats"], "name")[t]
    assert topic["partitions"] == 3
    assert topic["totalMessages"] == 35           # sum of high watermarks: 10 + 20 + 5

    group = by(d["consumerLags"], "groupId")[g]
    assert group["state"] == "Empty" and group["members"] == 0
    assert group["totalLag"] == 6                 # (10-4) + (20-20); p2 has no position
    (tl,) = group["topicLags"]
    assert tl["topic"] == t and tl["totalLag"] == 6
    got = [(p["partition"], p["currentOffset"], p["logEndOffset"], p["lag"])
           for p in tl["partitionLags"]]
    assert got == [(0, 4, 10, 6), (1, 20, 20, 0)]

    health = d["clusterHealth"]
    assert health["totalTopics"] == 1 and health["totalPartitions"] == 3
    assert health["totalConsumers"] == 1 and health["brokers"] == 1
    # Not measurable by polling Kafka: present as numbers, and declared unavailable
    # (no canary, no pod.log_dirs configured here; see test_pod_signals.py).
    for path in ("latency.produceP50", "throughput.produceBytes",
                 "clusterHealth.diskUsageBytes"):
        assert path in d["unavailable"]
    # One cycle: no previous snapshot, so no rate can be measured yet.
    assert "throughput.produceRate" in d["unavailable"]
    assert d["collector"]["stale"] is False and d["collector"]["error"] is None


def test_rates_account_for_every_message(kadmin, cycle_stream, unique):
    t, g = unique + "-t", unique + "-g"
    kadmin.create_topic(t, 2)
    kadmin.commit(g, t, {0: 0, 1: 0})
    s = cycle_stream(only(unique))
    first = s.next_metrics()["data"]
    assert "throughput.produceRate" in first["unavailable"]

    kadmin.produce(t, {0: 300, 1: 200})
    kadmin.commit(g, t, {0: 300, 1: 150})

    # Read cycles until the bridge has seen everything, then integrate its rates over
    # the windows it reports: the integral must equal what the test did, exactly.
    produced = consumed = 0.0
    while True:
        d = s.next_metrics()["data"]
        assert "throughput.produceRate" not in d["unavailable"]
        window_s = d["collector"]["rateWindowMs"] / 1000.0
        topic = by(d["topicStats"], "name")[t]
        assert topic["produceRate"] >= 0 and topic["fetchRate"] >= 0
        produced += topic["produceRate"] * window_s
        consumed += topic["fetchRate"] * window_s
        group = by(d["consumerLags"], "groupId")[g]
        if topic["totalMessages"] == 500 and group["totalLag"] == 50:
            break
    # Rates are rounded to 3 decimals per window: allow that rounding, nothing more.
    assert produced == pytest.approx(500, abs=0.05)
    assert consumed == pytest.approx(450, abs=0.05)
    assert events(s.messages) == []


def test_topic_created_and_deleted_by_another_client(kadmin, cycle_stream, unique):
    existing, t = unique + "-existing", unique + "-new"
    kadmin.create_topic(existing, 1)
    s = cycle_stream(only(unique))
    s.next_metrics()                                   # baseline: `existing` is not news

    kadmin.create_topic(t, 4)
    created = s.wait_for(lambda m: m["type"] == "topic_created", "topic_created")
    assert created["data"] == {"name": t, "partitions": 4}
    assert isinstance(created["timestamp"], int)

    kadmin.delete_topic(t)
    deleted = s.wait_for(lambda m: m["type"] == "topic_deleted", "topic_deleted")
    assert deleted["data"] == {"name": t}
    for _ in range(3):                                 # nothing else follows
        s.next_metrics()
    assert [(m["type"], m["data"]["name"]) for m in events(s.messages)] == [
        ("topic_created", t), ("topic_deleted", t)]


class Member:
    """A real consumer-group member, polling on its own thread."""

    def __init__(self, bootstrap, group, topic):
        from confluent_kafka import Consumer
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                           "auto.offset.reset": "earliest"})
        self.c.subscribe([topic])
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            self.c.poll(0.2)

    def close(self):
        self.stop.set()
        self.t.join()
        self.c.close()


def test_group_updates_follow_members(kadmin, cycle_stream, unique, kafka):
    t, g = unique + "-t", unique + "-g"
    kadmin.create_topic(t, 2)
    s = cycle_stream(only(unique))
    s.next_metrics()

    def group_event(state, members):
        return lambda m: (m["type"] == "group_updated" and m["data"]["groupId"] == g
                          and m["data"]["state"] == state
                          and m["data"]["members"] == members)

    m1 = Member(kafka, g, t)
    m2 = None
    try:
        s.wait_for(group_event("Stable", 1), "Stable with 1 member")
        m2 = Member(kafka, g, t)
        s.wait_for(group_event("Stable", 2), "Stable with 2 members")
    finally:
        m1.close()
        if m2:
            m2.close()
    s.wait_for(group_event("Empty", 0), "Empty after both members left")
    valid = {"Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"}
    for e in events(s.messages):
        assert e["type"] == "group_updated" and e["data"]["groupId"] == g
        assert e["data"]["state"] in valid


def test_broker_outage_produces_no_false_events(kadmin, cycle_stream, unique):
    t, g = unique + "-t", unique + "-g"
    kadmin.create_topic(t, 2)
    kadmin.produce(t, {0: 7, 1: 3})
    kadmin.commit(g, t, {0: 2, 1: 3})
    s = cycle_stream({**only(unique), "kafka.request_timeout_ms": 2000})
    base = s.next_metrics()["data"]
    assert by(base["consumerLags"], "groupId")[g]["totalLag"] == 5

    kafka_ctl("pause", timeout=120)
    try:
        outage_start = time.monotonic()
        stale = s.wait_for(lambda m: m["type"] == "metrics"
                           and m["data"]["collector"]["error"] is not None,
                           "a failed cycle")["data"]
        # Keep the broker down for 30 s in all, reading everything the bridge says.
        ages = []
        while time.monotonic() - outage_start < 30:
            d = s.next_metrics()["data"]
            assert d["collector"]["error"] is not None
            ages.append(d["collector"]["ageMs"])
            # The last good data is still served, with its age.
            assert by(d["consumerLags"], "groupId")[g]["totalLag"] == 5
        assert ages == sorted(ages) and ages[-1] > ages[0]
        assert stale["collector"]["cyclesFailed"] >= 1
    finally:
        kafka_ctl("resume")
    assert s.proc.poll() is None, "the bridge must survive the outage"
    d = s.wait_for(lambda m: m["type"] == "metrics" and m["data"]["collector"]["error"] is None,
                   "recovery", timeout=WAIT_S * 2)["data"]
    assert d["collector"]["stale"] is False
    assert by(d["consumerLags"], "groupId")[g]["totalLag"] == 5
    for _ in range(3):
        s.next_metrics()
    assert events(s.messages) == [], "an outage must not produce events"
