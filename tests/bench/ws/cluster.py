#!/usr/bin/python3
"""Kafka side of the WebSocket fan-out benchmark (tests/bench/ws/run.sh).

    cluster.py setup --bootstrap ADDR [--topics 60 --partitions 3 --groups 4
                                       --group-topics 5 --messages 10]
    cluster.py burst-create --bootstrap ADDR --prefix P --count K
    cluster.py burst-delete --bootstrap ADDR --prefix P

setup         creates wsb-tNNN topics (--partitions each), writes --messages 16-byte
              messages to every partition, and commits offsets for consumer groups
              wsb-gNN: group g commits every partition of topics g*group_topics ..
              g*group_topics+group_topics-1 (mod topics) at offset messages-1 (lag 1).
              Commits are "memberless" (a Consumer with group.id that never subscribes).
              The point is a metrics message of realistic shape and a size >= 8 KB.
burst-create  creates --count one-partition topics PREFIX-NN in ONE CreateTopics call
              (the bridge reports them as topic_created events in its next cycle).
burst-delete  deletes every topic whose name starts with PREFIX, in one call.

Prints one line of JSON. Uses Debian's python3-confluent-kafka.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC_FMT = "wsb-t{:03d}"
GROUP_FMT = "wsb-g{:02d}"


def admin_for(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def wait_all(futures):
    for name, fut in futures.items():
        try:
            fut.result()
        except KafkaException as e:
            code = e.args[0].code()
            if code not in (36, 3):  # TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PART
                raise


def wait_leaders(admin, names, deadline_s=120):
    t_end = time.time() + deadline_s
    want = set(names)
    while True:
        md = admin.list_topics(timeout=30)
        ready = {n for n in want if n in md.topics and md.topics[n].partitions and
                 all(p.leader >= 0 for p in md.topics[n].partitions.values())}
        if ready == want:
            return
        if time.time() > t_end:
            raise SystemExit(f"topics without leaders after {deadline_s}s")
        time.sleep(0.5)


def setup(a):
    t0 = time.time()
    admin = admin_for(a.bootstrap)
    names = [TOPIC_FMT.format(i) for i in range(a.topics)]
    wait_all(admin.create_topics(
        [NewTopic(n, num_partitions=a.partitions, replication_factor=1) for n in names],
        request_timeout=60, operation_timeout=60))
    wait_leaders(admin, names)
    t_topics = time.time()

    p = Producer({"bootstrap.servers": a.bootstrap, "linger.ms": 20, "acks": "1"})
    for n in names:
        for part in range(a.partitions):
            for _ in range(a.messages):
                p.produce(n, b"x" * 16, partition=part)
        p.poll(0)
    if p.flush(60) != 0:
        raise SystemExit("producer could not flush")
    t_msgs = time.time()

    committed = 0
    for g in range(a.groups):
        c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": GROUP_FMT.format(g),
                      "enable.auto.commit": False})
        offs = []
        for j in range(a.group_topics):
            topic = names[(g * a.group_topics + j) % len(names)]
            offs += [TopicPartition(topic, part, max(0, a.messages - 1))
                     for part in range(a.partitions)]
        c.commit(offsets=offs, asynchronous=False)
        committed += len(offs)
        c.close()
    t_groups = time.time()
    print(json.dumps({
        "topics": a.topics, "partitions_per_topic": a.partitions,
        "messages_per_partition": a.messages, "groups": a.groups,
        "committed_partitions": committed,
        "s_topics": round(t_topics - t0, 2), "s_messages": round(t_msgs - t_topics, 2),
        "s_groups": round(t_groups - t_msgs, 2)}))


def burst_create(a):
    t0 = time.time()
    admin = admin_for(a.bootstrap)
    names = [f"{a.prefix}-{i:02d}" for i in range(a.count)]
    wait_all(admin.create_topics(
        [NewTopic(n, num_partitions=1, replication_factor=1) for n in names],
        request_timeout=60, operation_timeout=60))
    print(json.dumps({"created": len(names), "s": round(time.time() - t0, 3)}))


def burst_delete(a):
    t0 = time.time()
    admin = admin_for(a.bootstrap)
    md = admin.list_topics(timeout=30)
    names = sorted(n for n in md.topics if n.startswith(a.prefix))
    if names:
        wait_all(admin.delete_topics(names, request_timeout=60, operation_timeout=60))
    print(json.dumps({"deleted": len(names), "s": round(time.time() - t0, 3)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--bootstrap", required=True)
    s.add_argument("--topics", type=int, default=30)
    s.add_argument("--partitions", type=int, default=3)
    s.add_argument("--groups", type=int, default=4)
    s.add_argument("--group-topics", type=int, default=2)
    s.add_argument("--messages", type=int, default=10)
    for name in ("burst-create", "burst-delete"):
        b = sub.add_parser(name)
        b.add_argument("--bootstrap", required=True)
        b.add_argument("--prefix", required=True)
        if name == "burst-create":
            b.add_argument("--count", type=int, default=20)
    a = ap.parse_args()
    {"setup": setup, "burst-create": burst_create, "burst-delete": burst_delete}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
