#!/usr/bin/python3
"""Grow a benchmark cluster on a REAL broker for the collector benchmark.

    cluster.py --bootstrap ADDR --partitions P --groups G [options]

brings the broker at ADDR to (at least) P partitions and G consumer groups with
committed offsets, adding only what is missing, so the benchmark can grow one cluster
step by step (1,000 -> 2,000 -> ... partitions) without starting over:

  topics     bench-tNNNN with --per-topic partitions each (default 100), created in
             batches with the admin CreateTopics call;
  messages   --messages per partition (default 3, 16-byte values), written by one
             producer to the NEW topics only, with explicit partitions;
  groups     bench-gNNNNN, each committing offsets for every partition of 1..5 topics
             (group i: topics (i*7 + j) mod T for j < 1 + i % 5, i.e. 300 partitions on
             average with 100-partition topics) at offset messages-1, so that every
             committed partition has lag 1. Commits are "memberless": a Consumer with
             group.id, never subscribed, Consumer.commit(offsets=..., asynchronous=False)
             (the group is Empty, protocol type "", as offset-only tools leave it).
             Spread over --procs processes. Groups are created only once, for the
             topics that exist at that moment.

Prints one line of JSON with what exists afterwards and how long each part took.
Uses Debian's python3-confluent-kafka (1.7.0 on librdkafka 2.0.2).
"""
import argparse
import json
import multiprocessing
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC_FMT = "bench-t{:04d}"
GROUP_FMT = "bench-g{:05d}"


def existing(admin):
    md = admin.list_topics(timeout=60)
    topics = {name: len(t.partitions) for name, t in md.topics.items()
              if name.startswith("bench-t")}
    return topics


def create_topics(admin, names, per_topic):
    for i in range(0, len(names), 20):
        batch = [NewTopic(n, num_partitions=per_topic, replication_factor=1)
                 for n in names[i:i + 20]]
        futures = admin.create_topics(batch, request_timeout=120, operation_timeout=120)
        for name, fut in futures.items():
            try:
                fut.result()
            except KafkaException as e:
                if e.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS
                    raise


def wait_leaders(admin, names, per_topic, deadline_s=300):
    t_end = time.time() + deadline_s
    want = set(names)
    while True:
        md = admin.list_topics(timeout=60)
        ready = {n for n in want if n in md.topics and
                 len(md.topics[n].partitions) == per_topic and
                 all(p.leader >= 0 for p in md.topics[n].partitions.values())}
        if ready == want:
            return
        if time.time() > t_end:
            raise SystemExit(f"topics without leaders after {deadline_s}s: "
                             f"{sorted(want - ready)[:5]}...")
        time.sleep(1)


def produce(bootstrap, names, per_topic, messages):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                  "batch.num.messages": 10000, "queue.buffering.max.messages": 1000000,
                  "acks": "1"})
    value = b"x" * 16
    for n in names:
        for part in range(per_topic):
            for _ in range(messages):
                while True:
                    try:
                        p.produce(n, value=value, partition=part)
                        break
                    except BufferError:
                        p.poll(0.1)
        p.poll(0)
    left = p.flush(300)
    if left:
        raise SystemExit(f"{left} messages not delivered")


def group_topics(i, topic_names):
    t = len(topic_names)
    k = min(1 + i % 5, t)
    return sorted({topic_names[(i * 7 + j) % t] for j in range(k)})


def commit_worker(args):
    bootstrap, ids, topic_names, per_topic, offset = args
    for i in ids:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP_FMT.format(i),
                      "enable.auto.commit": False})
        offsets = [TopicPartition(t, p, offset)
                   for t in group_topics(i, topic_names) for p in range(per_topic)]
        for attempt in range(5):
            try:
                c.commit(offsets=offsets, asynchronous=False)
                break
            except KafkaException:
                if attempt == 4:
                    raise
                time.sleep(1)
        c.close()
    return len(ids)


def existing_groups(admin):
    groups = set()
    for g in admin.list_groups(timeout=60):
        if g.id.startswith("bench-g"):
            groups.add(g.id)
    return groups


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--groups", type=int, required=True)
    ap.add_argument("--per-topic", type=int, default=100)
    ap.add_argument("--messages", type=int, default=3)
    ap.add_argument("--procs", type=int, default=4)
    a = ap.parse_args()

    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    timing = {}

    t0 = time.time()
    have = existing(admin)
    want_topics = (a.partitions + a.per_topic - 1) // a.per_topic
    all_names = [TOPIC_FMT.format(i) for i in range(want_topics)]
    new = [n for n in all_names if n not in have]
    if new:
        create_topics(admin, new, a.per_topic)
        wait_leaders(admin, new, a.per_topic)
    timing["create_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    if new:
        produce(a.bootstrap, new, a.per_topic, a.messages)
    timing["produce_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    have_groups = existing_groups(admin)
    topic_names = sorted(existing(admin))
    missing = [i for i in range(a.groups) if GROUP_FMT.format(i) not in have_groups]
    if missing:
        chunks = [missing[k::a.procs] for k in range(a.procs)]
        work = [(a.bootstrap, ids, topic_names, a.per_topic, a.messages - 1)
                for ids in chunks if ids]
        with multiprocessing.Pool(len(work)) as pool:
            pool.map(commit_worker, work)
    timing["commit_s"] = round(time.time() - t0, 1)

    topics = existing(admin)
    groups = existing_groups(admin)
    print(json.dumps({"topics": len(topics), "partitions": sum(topics.values()),
                      "groups": len(groups), "new_topics": len(new),
                      "new_groups": len(missing), **timing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
