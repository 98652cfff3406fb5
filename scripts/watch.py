#!/usr/bin/python3
"""Print a takhin-bridge WebSocket stream as one human-readable line per message.

Usage: scripts/watch.py URL [--key KEY] [--raw]
Needs Debian's python3-websockets (run with /usr/bin/python3).
"""
import argparse
import asyncio
import json
import sys
import time

import websockets


def fmt_rate(v, unavailable, path):
    return "n/a" if path in unavailable else f"{v:.1f}/s"


def fmt_latency(lat, unavailable, side):
    """p50/p99 of one canary side in ms, or n/a when not measured."""
    if f"latency.{side}P99" in unavailable:
        return "n/a"
    return f"{lat[side + 'P50']:.1f}/{lat[side + 'P99']:.1f}ms"


def summarize(msg):
    t = msg.get("type")
    d = msg.get("data")
    ts = time.strftime("%H:%M:%S", time.localtime(msg.get("timestamp", 0)))
    if t == "metrics":
        un = set(d.get("unavailable", []))
        th, ch, col = d["throughput"], d["clusterHealth"], d.get("collector", {})
        lags = sorted(d["consumerLags"], key=lambda g: -g["totalLag"])[:3]
        top = ", ".join(f"{g['groupId']}={g['totalLag']}" for g in lags) or "-"
        state = "STALE " if col.get("stale") else ""
        err = f" error={col['error']}" if col.get("error") else ""
        return (f"{ts} {state}metrics topics={ch['totalTopics']} partitions="
                f"{ch['totalPartitions']} groups={ch['totalConsumers']} produce="
                f"{fmt_rate(th['produceRate'], un, 'throughput.produceRate')} consume="
                f"{fmt_rate(th['fetchRate'], un, 'throughput.fetchRate')} latency p50/p99 "
                f"produce={fmt_latency(d['latency'], un, 'produce')} "
                f"fetch={fmt_latency(d['latency'], un, 'fetch')} top-lag: {top}{err}")
    if t in ("topic_created", "topic_deleted"):
        extra = f" partitions={d['partitions']}" if "partitions" in d else ""
        return f"{ts} {t} {d['name']}{extra}"
    if t == "group_updated":
        return f"{ts} group_updated {d['groupId']} state={d['state']} members={d['members']}"
    return f"{ts} {t} {json.dumps(d) if d is not None else ''}"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--key")
    ap.add_argument("--raw", action="store_true")
    a = ap.parse_args()
    headers = {"Authorization": f"Bearer {a.key}"} if a.key else {}
    async with websockets.connect(a.url, extra_headers=headers, max_size=None) as ws:
        async for raw in ws:
            print(raw if a.raw else summarize(json.loads(raw)), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
