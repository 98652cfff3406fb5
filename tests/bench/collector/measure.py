#!/usr/bin/python3
"""Run takhin-bridge against a cluster and print what each collector cycle cost.

    measure.py --binary PATH --config CFG [--mode cycles|daemon] [--cycles 12]
               [--skip 2] [--label TEXT]

Modes:
  cycles   `takhin-bridge --cycles N+1 -c CFG`: every cycle's metrics message is
           encoded to JSON and printed by the main thread, i.e. what the bridge costs
           with one WebSocket client subscribed to everything;
  daemon   `takhin-bridge -c CFG` (the daemon, WS server on the config's port, no
           client connected, so nothing is encoded): the collector alone. Cycles are
           read from the collector's debug line ("cycle ok in N ms ..."); the daemon
           is stopped with SIGTERM (by its pid) after N+1 cycles.

How the figures are obtained (all from the running process, nothing estimated here):
  cycle time     data.collector.cycleMs of every metrics message, or the same figure
                 from the debug line in daemon mode (the collector's own
                 monotonic measurement, steps 1-5: metadata, groups, committed offsets,
                 end offsets, snapshot/metrics/events; JSON encoding is NOT included);
  requests       two figures:
                 - "estimated": data.collector.requests (else the "~N requests" of the
                   collector's debug log line): the collector's count of what it asked
                   for: 1 Metadata + 2 per broker (ListGroups + DescribeGroups) +
                   1 OffsetFetch per group (+ 1 FindCoordinator per group beyond
                   librdkafka's 11-entry coordinator cache) + 1 ListOffsets per leader
                   per chunk per kind (log start and end offsets);
                 - "measured": librdkafka's own counter of requests sent by the
                   bridge's client (statistics "tx", published cumulatively as
                   data.bridge.requests; needs kafka.statistics_interval_ms, 100 in
                   run.sh's config): its increase over the measured cycles divided by
                   their number (each sample lags the cycle end by at most one
                   statistics interval, so the error is at most one cycle's requests
                   divided by the number of cycles averaged);
  step times     metadata / groups / committed offsets / end offsets / metrics, ms,
                 from the collector's debug line (medians over the measured cycles);
  CPU per cycle  utime+stime from /proc/PID/task/TID/stat of every thread, read at
                 the end of each cycle (metrics message or debug line); per-cycle
                 deltas averaged over the measured cycles, split into: collector
                 thread, librdkafka threads ("rdk:*"), main thread (cycles mode: JSON
                 encoding and printing of the message; daemon mode: the WebSocket
                 service thread, idle without clients);
  peak RSS       VmHWM of /proc/PID/status, read at the end of each cycle (the last
                 reading, after the last measured cycle, is reported);
  message size   bytes of the metrics JSON line (one WebSocket "metrics" message;
                 cycles mode only), and the (group, partition) lag entries in it, i.e.
                 the committed offsets the cycle read.
The first --skip cycles (client start, connections, first-cycle allocations) are
reported separately and left out of the median/max. The binary runs --cycles + 1
cycles; the last one is not measured (its threads exit while /proc is read).
The metrics lines (tens of MB at 10k partitions) are not parsed as a whole: the small
"collector" and "bridge" objects are cut out of them, so that this script does not
compete with the bridge and the broker for the machine's 2 cores.

Prints one JSON object (the summary, with per-cycle lists) on stdout.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
# The collector object has no nested objects; bridge.requests is an integer.
COLLECTOR_RE = re.compile(rb'"collector":(\{[^{}]*\})')
BRIDGE_REQ_RE = re.compile(rb'"bridge":\{[^{}]*?"requests":(\d+)')


def thread_cpu(pid):
    """{tid: (comm, cpu_seconds)} for every thread of @pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except FileNotFoundError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): utime is field 14, stime 15.
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        out[int(tid)] = (comm, cpu)
    return out


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def classify(pid, tid, comm):
    if tid == pid:
        return "main"
    if comm.startswith("rdk:"):
        return "librdkafka"
    return "collector"


STEP_NAMES = ["metadata", "groups", "committed", "end_offsets", "metrics"]
DEBUG_RE = re.compile(r"cycle (ok|failed) in (\d+) ms.*?~(\d+) requests")
STEPS_RE = re.compile(r"metadata (\d+), groups (\d+), committed (\d+), "
                      r"end offsets (\d+), metrics (\d+)")


def parse_debug(line):
    """(ok, cycle_ms, requests, [step ms...] or None) from a collector debug line."""
    m = DEBUG_RE.search(line)
    if not m:
        return None
    st = STEPS_RE.search(line)
    return (m.group(1) == "ok", int(m.group(2)), int(m.group(3)),
            [int(x) for x in st.groups()] if st else None)


class Sampler:
    """Per-thread CPU deltas and VmHWM of one process, sampled at cycle ends."""

    def __init__(self, pid):
        self.pid = pid
        self.prev = thread_cpu(pid)
        self.hwm = None

    def sample(self):
        now = thread_cpu(self.pid)
        try:
            self.hwm = vm_hwm_kb(self.pid)
        except FileNotFoundError:
            pass
        split = {"collector": 0.0, "librdkafka": 0.0, "main": 0.0}
        for tid, (comm, cpu) in now.items():
            before = self.prev.get(tid, (comm, 0.0))[1]
            split[classify(self.pid, tid, comm)] += cpu - before
        self.prev = now
        return {k: round(v, 3) for k, v in split.items()}


def run_cycles_mode(a):
    proc = subprocess.Popen([a.binary, "--cycles", str(a.cycles + 1), "-c", a.config],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    debug, errors = [], []

    def read_stderr():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            d = parse_debug(line)
            if d:
                debug.append(d)
            if line.startswith(("error", "warn")):
                errors.append(line.strip())

    t_err = threading.Thread(target=read_stderr, daemon=True)
    t_err.start()
    sampler = Sampler(proc.pid)
    cycles = []
    for raw in proc.stdout:
        if not raw.startswith(b'{"type":"metrics"'):
            continue
        cpu = sampler.sample()
        co = json.loads(COLLECTOR_RE.search(raw).group(1))
        br = BRIDGE_REQ_RE.search(raw)
        cycles.append({
            "cycleMs": co["cycleMs"],
            "ok": co["error"] is None,
            "requests": co.get("requests"),
            "tx_total": int(br.group(1)) if br else None,
            "bytes": len(raw) - 1,
            # (group, partition) lag entries in the message = committed offsets seen
            "lag_entries": raw.count(b'"currentOffset":'),
            "cpu_s": cpu,
        })
    rc = proc.wait()
    t_err.join(timeout=5)
    for i, c in enumerate(cycles):
        d = debug[i] if i < len(debug) else None
        if c["requests"] is None and d:
            c["requests"] = d[2]
        c["steps_ms"] = d[3] if d else None
    return rc, cycles, sampler.hwm, errors


def run_daemon_mode(a):
    proc = subprocess.Popen([a.binary, "-c", a.config], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid)
    cycles, errors = [], []
    try:
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            if line.startswith(("error", "warn")):
                errors.append(line.strip())
            d = parse_debug(line)
            if not d:
                continue
            cpu = sampler.sample()
            cycles.append({"cycleMs": d[1], "ok": d[0], "requests": d[2], "tx_total": None,
                           "bytes": None, "cpu_s": cpu, "steps_ms": d[3]})
            if len(cycles) >= a.cycles + 1:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    return (0 if proc.returncode in (0, -signal.SIGTERM) else proc.returncode), cycles, \
        sampler.hwm, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--mode", choices=["cycles", "daemon"], default="cycles")
    ap.add_argument("--cycles", type=int, default=12)
    ap.add_argument("--skip", type=int, default=2)
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    load_before = os.getloadavg()
    t_start = time.monotonic()
    run = run_cycles_mode if a.mode == "cycles" else run_daemon_mode
    rc, cycles, hwm, errors = run(a)
    wall = time.monotonic() - t_start
    load_after = os.getloadavg()
    cycles = cycles[:a.cycles]  # the extra last cycle is not measured

    measured = cycles[a.skip:]
    # librdkafka's counter: increase from the cycle before the first measured one.
    # The first sample may predate the first statistics emission (0): start later.
    measured_req = None
    base = next((i for i in range(max(a.skip - 1, 0), len(cycles) - 1)
                 if cycles[i]["tx_total"]), None)
    if base is not None and cycles[-1]["tx_total"]:
        measured_req = round((cycles[-1]["tx_total"] - cycles[base]["tx_total"])
                             / (len(cycles) - 1 - base))
    steps = [c["steps_ms"] for c in measured if c["steps_ms"]]
    step_median = ({name: statistics.median(s[k] for s in steps)
                    for k, name in enumerate(STEP_NAMES)} if steps else None)
    ms = [c["cycleMs"] for c in measured]
    cpu_tot = [sum(c["cpu_s"].values()) for c in measured]

    def per_cycle(kind):
        if not measured:
            return None
        return round(sum(c["cpu_s"][kind] for c in measured) / len(measured) * 1000)

    summary = {
        "label": a.label,
        "mode": a.mode,
        "exit_code": rc,
        "cycles": len(cycles),
        "failed_cycles": sum(1 for c in cycles if not c["ok"]),
        "measured_cycles": len(measured),
        "cycle_ms_median": statistics.median(ms) if ms else None,
        "cycle_ms_max": max(ms) if ms else None,
        "cycle_ms_min": min(ms) if ms else None,
        "first_cycles_ms": [c["cycleMs"] for c in cycles[:a.skip]],
        "requests_estimated": sorted({c["requests"] for c in measured
                                      if c["requests"] is not None}),
        "requests_measured": measured_req,
        "step_ms_median": step_median,
        "cpu_ms_per_cycle": round(statistics.mean(cpu_tot) * 1000) if cpu_tot else None,
        "cpu_ms_per_cycle_collector": per_cycle("collector"),
        "cpu_ms_per_cycle_librdkafka": per_cycle("librdkafka"),
        "cpu_ms_per_cycle_main": per_cycle("main"),
        "peak_rss_mib": round(hwm / 1024, 1) if hwm else None,
        "message_bytes": measured[-1]["bytes"] if measured else None,
        "lag_entries": measured[-1].get("lag_entries") if measured else None,
        "wall_s": round(wall, 1),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "warnings": errors[:5],
        "per_cycle": cycles,
    }
    print(json.dumps(summary))
    return 0 if rc == 0 and len(measured) == a.cycles - a.skip else 1


if __name__ == "__main__":
    sys.exit(main())
