#!/usr/bin/python3
"""Print the collector benchmark's results (results.jsonl written by run.sh) as a
Markdown table, one row per cluster size, cycles mode and daemon mode side by side,
then the VARIANTS runs (other kafka settings), if any.

    report.py RESULTS.jsonl
"""
import json
import sys


def main():
    rows = {}
    order = []
    variants = []
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            key = (r["partitions"], r["groups"])
            if not r.get("default", True):
                variants.append(r)
                continue
            if key not in rows:
                rows[key] = {}
                order.append(key)
            rows[key][r["mode"]] = r
            rows[key]["cluster"] = r.get("cluster", {})

    print("| partitions | groups | committed offsets | cycle ms median / max "
          "(daemon) | cycle ms median / max (--cycles) | steps ms: metadata / groups / "
          "committed / end offsets / metrics | requests per cycle: estimated / measured "
          "| CPU ms per cycle, daemon: collector + librdkafka | CPU ms per cycle, "
          "--cycles: + encode | peak RSS MiB: daemon / --cycles | metrics message MB |")
    print("|---:|---:|---:|---|---|---|---|---|---|---|---:|")
    for key in order:
        d = rows[key].get("daemon", {})
        c = rows[key].get("cycles", {})
        st = d.get("step_ms_median") or {}
        steps = " / ".join(f"{st.get(k, 0):g}" for k in
                           ["metadata", "groups", "committed", "end_offsets", "metrics"])
        est = ",".join(str(x) for x in c.get("requests_estimated") or
                       d.get("requests_estimated") or [])
        mb = c.get("message_bytes")
        print(f"| {key[0]:,} | {key[1]:,} | {c.get('lag_entries') or 0:,} "
              f"| {d.get('cycle_ms_median', '-'):g} / {d.get('cycle_ms_max', '-')} "
              f"| {c.get('cycle_ms_median', '-'):g} / {c.get('cycle_ms_max', '-')} "
              f"| {steps} | {est} / {c.get('requests_measured', '-')} "
              f"| {d.get('cpu_ms_per_cycle', '-')} ({d.get('cpu_ms_per_cycle_collector')}"
              f" + {d.get('cpu_ms_per_cycle_librdkafka')}) "
              f"| {c.get('cpu_ms_per_cycle', '-')} (encode {c.get('cpu_ms_per_cycle_main')}) "
              f"| {d.get('peak_rss_mib', '-')} / {c.get('peak_rss_mib', '-')} "
              f"| {mb / 1e6 if mb else 0:.1f} |")
    print()
    print("Broker at each step (file descriptors / memory maps / RSS MiB), load average "
          "(1 min) before/after the daemon run:")
    for key in order:
        cl = rows[key]["cluster"]
        d = rows[key].get("daemon", {})
        print(f"- {key[0]:,} partitions, {key[1]:,} groups: broker fds {cl.get('broker_fds')}, "
              f"maps {cl.get('broker_maps')}, RSS {cl.get('broker_rss_mib')} MiB; "
              f"setup {cl.get('create_s')} s create + {cl.get('produce_s')} s produce + "
              f"{cl.get('commit_s')} s commit; load {d.get('loadavg_1m_before_after')}")
    if variants:
        print()
        print("Variants (daemon mode, same cluster; kafka settings added to the default "
              "config):")
        print()
        print("| partitions | groups | kafka settings | cycle ms median / max | steps ms: "
              "metadata / groups / committed / end offsets / metrics | requests "
              "(estimated) | CPU ms per cycle (collector + librdkafka) |")
        print("|---:|---:|---|---|---|---|---|")
        for d in variants:
            st = d.get("step_ms_median") or {}
            steps = " / ".join(f"{st.get(k, 0):g}" for k in
                               ["metadata", "groups", "committed", "end_offsets", "metrics"])
            print(f"| {d['partitions']:,} | {d['groups']:,} | `{d['variant']}` "
                  f"| {d['cycle_ms_median']:g} / {d['cycle_ms_max']} | {steps} "
                  f"| {','.join(str(x) for x in d['requests_estimated'])} "
                  f"| {d['cpu_ms_per_cycle']} ({d['cpu_ms_per_cycle_collector']} + "
                  f"{d['cpu_ms_per_cycle_librdkafka']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
