"""The latency canary against the real local Kafka: latencies positive and plausible,
nothing lost on a healthy broker, probes lost and latencies withheld while the broker is
stopped, and back afterwards. The probe topic and its messages are checked with the
test's own Kafka clients.
"""
import re
import time

from conftest import WAIT_S, kafka_ctl, only

LATENCY = ["latency.produceP50", "latency.produceP95", "latency.produceP99",
           "latency.fetchP50", "latency.fetchP95", "latency.fetchP99"]


def canary_settings(unique, topic, **extra):
    s = {**only(unique), "canary.enabled": True, "canary.topic": topic,
         "canary.interval_ms": 200, "canary.lost_after_ms": 3000, "canary.window_s": 60}
    s.update(extra)
    return s


def ok_with(n):
    return lambda m: (m["type"] == "metrics" and m["data"]["canary"]["state"] == "ok"
                      and m["data"]["canary"]["fetchSamples"] >= n)


def test_canary_measures_a_healthy_broker(kadmin, cycle_stream, unique):
    topic = "__" + unique.replace("-", "_") + "_canary"
    t0_ms = int(time.time() * 1000)
    # The filters would let the probe topic through (internal topics on, its name
    # included): only the canary's own exclusion keeps it out of topicStats and events.
    s = cycle_stream(canary_settings(unique, topic, **{
        "collector.include_internal_topics": True,
        "collector.topics_include": [unique + "*", topic]}))
    try:
        d = s.wait_for(ok_with(20), "20 probes back")["data"]
        lat, c = d["latency"], d["canary"]
        for side in ("produce", "fetch"):
            p50, p95, p99 = (lat[f"{side}P{p}"] for p in (50, 95, 99))
            assert 0 < p50 <= p95 <= p99 < 10000, (side, p50, p95, p99)
        for path in LATENCY:
            assert path not in d["unavailable"]
        assert c["probesLost"] == 0 and c["produceErrors"] == 0
        assert c["error"] is None
        assert c["windowSeconds"] == 60
        assert c["partitions"] == 1  # one per broker; the local Kafka has one
        assert c["probesReceived"] <= c["probesAcked"] + c["partitions"]
        assert c["probesAcked"] <= c["probesSent"]
        assert c["fetchSamples"] == c["probesReceived"]  # all inside the 60 s window

        # the bridge created the topic: 1 partition, retention 1 h
        md = kadmin.admin.list_topics(topic, timeout=30).topics[topic]
        assert len(md.partitions) == 1
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        cfg = kadmin.admin.describe_configs([res])[res].result(timeout=30)
        assert cfg["retention.ms"].value == "3600000"
        # ... and is neither reported nor announced
        assert all(t["name"] != topic for t in d["topicStats"])
        assert all(m["data"].get("name") != topic for m in s.messages
                   if m["type"] == "topic_created")

        # the probes on the topic, read with the test's own consumer
        from confluent_kafka import Consumer, TopicPartition
        cons = Consumer({"bootstrap.servers": kadmin.bootstrap, "group.id": unique + "-peek",
                         "enable.auto.commit": False})
        try:
            cons.assign([TopicPartition(topic, 0, 0)])
            values = []
            deadline = time.monotonic() + WAIT_S
            while len(values) < 10 and time.monotonic() < deadline:
                m = cons.poll(1.0)
                if m is not None and not m.error():
                    values.append(m.value().decode())
        finally:
            cons.close()
        assert len(values) >= 10
        runs, seqs = set(), []
        for v in values:
            m = re.fullmatch(r"takhin-canary/1 ([0-9a-f]{16}) (\d+) (\d+) (\d+)", v)
            assert m, v
            runs.add(m.group(1))
            seqs.append(int(m.group(2)))
            assert t0_ms <= int(m.group(4)) <= int(time.time() * 1000)  # creation time
        assert len(runs) == 1
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    finally:
        s.close()
        kadmin.delete_topic(topic)


def test_canary_counts_lost_probes_while_the_broker_is_down(kadmin, cycle_stream, unique):
    topic = "__" + unique.replace("-", "_") + "_canary"
    s = cycle_stream(canary_settings(unique, topic, **{"kafka.request_timeout_ms": 2000}))
    try:
        d = s.wait_for(ok_with(10), "probes back")["data"]
        assert d["canary"]["probesLost"] == 0
        kafka_ctl("pause", timeout=120)
        try:
            down = s.wait_for(lambda m: m["type"] == "metrics"
                              and m["data"]["canary"]["probesLost"] > 0
                              and m["data"]["canary"]["state"] == "failing",
                              "lost probes")["data"]
            # latencies are withheld, never the old percentiles presented as current
            d = s.wait_for(lambda m: m["type"] == "metrics"
                           and all(p in m["data"]["unavailable"] for p in LATENCY),
                           "latencies unavailable")["data"]
            for p in LATENCY:
                assert d["latency"][p.split(".")[1]] == 0
            assert d["canary"]["error"]
            lost = d["canary"]["probesLost"]
            assert lost >= down["canary"]["probesLost"]
            # the counter keeps rising while the broker stays down
            s.wait_for(lambda m: m["type"] == "metrics"
                       and m["data"]["canary"]["probesLost"] > lost, "more lost probes")
        finally:
            kafka_ctl("resume")
        assert s.proc.poll() is None, "the bridge must survive the outage"
        d = s.wait_for(ok_with(1), "probes back after the outage", timeout=WAIT_S * 3)["data"]
        for path in LATENCY:
            assert path not in d["unavailable"]
        assert d["canary"]["error"] is None
    finally:
        s.close()
        kadmin.delete_topic(topic)
