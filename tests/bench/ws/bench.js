'use strict';
/*
 * bench.js - ONE measurement of the WebSocket fan-out benchmark against a RUNNING bridge
 * (run.sh starts a fresh bridge for every N and calls this). Prints one JSON line with
 * the figures on stdout; progress goes to stderr.
 *
 *   node bench.js --port P --pid BRIDGE_PID --n N [--procs 4] [--interval-ms 2000]
 *                 [--ticks 10] [--bootstrap ADDR --burst 20] [--kafka-pid PID]
 *                 [--base-addr 2] [--concurrency 64] [--load-nice 0] [--label TEXT]
 *
 * Phases (bounded: every wait has a deadline; children die with this process):
 *   1. ready      GET /readyz until 200 (a complete collector cycle exists).
 *   2. baseline   the bridge with 0 clients over 2 poll intervals: CPU (utime+stime
 *                 from /proc/PID/stat) and RSS (VmRSS from /proc/PID/status).
 *   3. connect    --procs load processes (load.js), each with N/procs connections
 *                 bound to its own source address 127.0.0.(base-addr + i), at most
 *                 --concurrency handshakes in flight per process; waits until all are
 *                 open (or failed after 3 retries), at most 300 s.
 *   4. settle     1.5 intervals; RSS "connected".
 *   5. window     --ticks poll intervals. CPU of the bridge (whole process, and its
 *                 service thread = the main thread, /proc/PID/task/PID/stat), of the
 *                 load processes, of the broker (--kafka-pid) and of the whole machine
 *                 (/proc/stat); RSS sampled every 250 ms. Event bursts: after 2.5
 *                 intervals, --burst topics are created in one CreateTopics call
 *                 (topic_created events at the next cycle); after 5.5 intervals they
 *                 are deleted (topic_deleted after collector.topic_delete_confirm_cycles
 *                 = 2 cycles).
 *   6. report     every load process returns its samples for metrics messages whose
 *                 publishedMs lies in the window; percentiles are computed here over
 *                 all samples (exact, sorted; no histogram approximation).
 */
const { fork, execFile } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');

function args() {
    const a = {
        port: 0, pid: 0, n: 1000, procs: 4, intervalMs: 2000, ticks: 10, bootstrap: '',
        burst: 20, kafkaPid: 0, baseAddr: 2, concurrency: 64, label: '', py: '/usr/bin/python3',
        clkTck: 100, loadNice: 0,
    };
    const v = process.argv.slice(2);
    for (let i = 0; i < v.length; i += 2) {
        const k = v[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
        if (!(k in a)) throw new Error('unknown option ' + v[i]);
        a[k] = typeof a[k] === 'number' ? Number(v[i + 1]) : v[i + 1];
    }
    if (!a.port || !a.pid) throw new Error('--port and --pid are required');
    return a;
}

const A = args();
const log = (...m) => console.error('   ', ...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---- /proc ------------------------------------------------------------------------ */

function cpuTicks(statPath) {
    /* fields after "(comm)": state is field 3; utime 14, stime 15 (1-based) */
    const s = fs.readFileSync(statPath, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
}

function procCpu(pid) {
    try { return cpuTicks(`/proc/${pid}/stat`); } catch (e) { return NaN; }
}

function statusKb(pid, field) {
    try {
        const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const m = s.match(new RegExp('^' + field + ':\\s+(\\d+) kB', 'm'));
        return m ? Number(m[1]) : NaN;
    } catch (e) { return NaN; }
}

function machineCpu() {
    const l = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = l[3] + l[4];
    const total = l.slice(0, 8).reduce((x, y) => x + y, 0);
    return { idle, total };
}

function sample(loadPids) {
    return {
        wall: Date.now(),
        bridge: procCpu(A.pid),
        service: (() => { try { return cpuTicks(`/proc/${A.pid}/task/${A.pid}/stat`); } catch (e) { return NaN; } })(),
        kafka: A.kafkaPid ? procCpu(A.kafkaPid) : NaN,
        loads: loadPids.reduce((s, p) => s + procCpu(p), 0),
        machine: machineCpu(),
    };
}

function cores(t0, t1, field) {
    return (t1[field] - t0[field]) / A.clkTck / ((t1.wall - t0.wall) / 1000);
}

/* ---- helpers ------------------------------------------------------------------------ */

function httpStatus(p) {
    return new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: A.port, path: p, timeout: 2000 }, (res) => {
            res.resume();
            resolve(res.statusCode);
        });
        req.on('error', () => resolve(0));
        req.on('timeout', () => { req.destroy(); resolve(0); });
    });
}

function httpText(p) {
    return new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: A.port, path: p, timeout: 5000 }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve(body));
        });
        req.on('error', () => resolve(''));
        req.on('timeout', () => { req.destroy(); resolve(''); });
    });
}

/* The bridge's own counters (GET /metrics, Prometheus text): summed over label sets. */
async function bridgeCounters() {
    const text = await httpText('/metrics');
    const get = (name, labels) => {
        let sum = 0;
        for (const line of text.split('\n')) {
            if (!line.startsWith(name)) continue;
            const rest = line.slice(name.length);
            if (rest[0] !== ' ' && rest[0] !== '{') continue;
            if (labels && !rest.includes(labels)) continue;
            sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
        return sum;
    };
    return {
        cycles: get('takhin_collector_cycles_total'),
        sentMetrics: get('takhin_ws_messages_sent_total', 'type="metrics"'),
        sentAll: get('takhin_ws_messages_sent_total'),
        dropped: get('takhin_ws_dropped_metrics_total'),
    };
}

function runPy(argv) {
    return new Promise((resolve) => {
        const t = Date.now();
        execFile(A.py, [path.join(__dirname, 'cluster.py'), ...argv], { timeout: 60000 },
            (err, out, errOut) => {
                if (err) log('cluster.py', argv[0], 'failed:', String(errOut || err).trim().slice(-300));
                resolve({ ok: !err, ms: Date.now() - t, out: String(out).trim() });
            });
    });
}

function pct(sorted, p) {
    if (!sorted.length) return null;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[i];
}

function summary(a) {
    const s = Float64Array.from(a).sort();
    let sum = 0;
    for (const x of s) sum += x;
    return {
        n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), p999: pct(s, 99.9),
        max: s.length ? s[s.length - 1] : null, mean: s.length ? +(sum / s.length).toFixed(2) : null,
    };
}

/* ---- main ---------------------------------------------------------------------------- */

async function main() {
    const out = { label: A.label, n: A.n, procs: A.procs, intervalMs: A.intervalMs, ticks: A.ticks,
                  loadNice: A.loadNice };

    log(`[N=${A.n}] waiting for /readyz ...`);
    const readyBy = Date.now() + 120000;
    while ((await httpStatus('/readyz')) !== 200) {
        if (Date.now() > readyBy) throw new Error('bridge not ready after 120 s');
        await sleep(250);
    }

    await sleep(A.intervalMs);
    const b0 = sample([]);
    await sleep(2 * A.intervalMs);
    const b1 = sample([]);
    out.rss0Kb = statusKb(A.pid, 'VmRSS');
    out.baselineCores = +cores(b0, b1, 'bridge').toFixed(4);
    log(`[N=${A.n}] baseline (0 clients): RSS ${out.rss0Kb} kB, ${(out.baselineCores * 100).toFixed(1)}% of a core`);

    /* ---- connect */
    const children = [];
    const base = Math.floor(A.n / A.procs);
    const url = `ws://127.0.0.1:${A.port}/api/monitoring/ws`;
    const tConnect = Date.now();
    for (let i = 0; i < A.procs; i++) {
        const count = base + (i < A.n % A.procs ? 1 : 0);
        const addr = `127.0.0.${A.baseAddr + i}`;
        const ch = fork(path.join(__dirname, 'load.js'), [], {
            env: { ...process.env, LOAD_URL: url, LOAD_ADDR: addr, LOAD_COUNT: String(count),
                   LOAD_CONCURRENCY: String(A.concurrency), LOAD_MAX_S: '900' },
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        if (A.loadNice) require('os').setPriority(ch.pid, A.loadNice);
        const c = { ch, addr, count, progress: null, report: null, exited: false };
        ch.on('message', (m) => {
            if (m.type === 'progress') c.progress = m;
            else if (m.type === 'report') c.report = m;
        });
        ch.on('exit', () => { c.exited = true; });
        children.push(c);
    }
    const killAll = () => { for (const c of children) if (!c.exited) { try { c.ch.kill('SIGKILL'); } catch (e) { /* gone */ } } };
    process.on('exit', killAll);

    const connectBy = Date.now() + 300000;
    let lastLog = 0;
    for (;;) {
        await sleep(250);
        const opened = children.reduce((s, c) => s + (c.progress ? c.progress.opened : 0), 0);
        const done = children.every((c) => c.progress && c.progress.done);
        if (Date.now() - lastLog > 3000) {
            log(`[N=${A.n}] connecting: ${opened} open, ${Math.round((Date.now() - tConnect) / 1000)} s`);
            lastLog = Date.now();
        }
        if (children.some((c) => c.exited)) throw new Error('a load process exited early');
        if (done) break;
        if (Date.now() > connectBy) { log('connect deadline passed'); break; }
    }
    out.connectS = +((Date.now() - tConnect) / 1000).toFixed(1);
    out.opened = children.reduce((s, c) => s + c.progress.opened, 0);
    out.connectFailed = children.reduce((s, c) => s + c.progress.failed, 0);
    out.connectRetries = children.reduce((s, c) => s + c.progress.retried, 0);
    log(`[N=${A.n}] ${out.opened} open (${out.connectFailed} failed, ${out.connectRetries} retries) in ${out.connectS} s`);

    await sleep(1.5 * A.intervalMs);
    out.rssConnectedKb = statusKb(A.pid, 'VmRSS');

    /* ---- window */
    const loadPids = children.map((c) => c.ch.pid);
    for (const c of children) c.ch.send({ cmd: 'mark' });
    const k0 = await bridgeCounters();
    const s0 = sample(loadPids);
    let rssMax = 0;
    const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, statusKb(A.pid, 'VmRSS') || 0); }, 250);
    const burst = {};
    const pyBase = ['--bootstrap', A.bootstrap, '--prefix', `wsb-burst-${A.n}-${process.pid}`];
    const tasks = [];
    if (A.bootstrap && A.burst > 0) {
        tasks.push(sleep(2.5 * A.intervalMs).then(() => runPy(['burst-create', ...pyBase, '--count', String(A.burst)]))
            .then((r) => { burst.create = r; }));
        tasks.push(sleep(5.5 * A.intervalMs).then(() => runPy(['burst-delete', ...pyBase]))
            .then((r) => { burst.delete = r; }));
    }
    await sleep(A.ticks * A.intervalMs);
    const s1 = sample(loadPids);
    const k1 = await bridgeCounters();
    clearInterval(rssTimer);
    await Promise.all(tasks);
    out.rssEndKb = statusKb(A.pid, 'VmRSS');
    out.rssMaxKb = Math.max(rssMax, out.rssEndKb);
    out.hwmKb = statusKb(A.pid, 'VmHWM');
    out.fds = (() => { try { return fs.readdirSync(`/proc/${A.pid}/fd`).length; } catch (e) { return null; } })();
    out.bridgeCores = +cores(s0, s1, 'bridge').toFixed(4);
    out.serviceCores = +cores(s0, s1, 'service').toFixed(4);
    out.loadCores = +cores(s0, s1, 'loads').toFixed(4);
    out.kafkaCores = A.kafkaPid ? +cores(s0, s1, 'kafka').toFixed(4) : null;
    const mt = s1.machine.total - s0.machine.total;
    out.machineBusyCores = +(((mt - (s1.machine.idle - s0.machine.idle)) / mt) * require('os').cpus().length).toFixed(3);
    out.burst = { count: A.bootstrap ? A.burst : 0, createMs: burst.create && burst.create.ms,
                  deleteMs: burst.delete && burst.delete.ms,
                  created: burst.create && burst.create.out, deleted: burst.delete && burst.delete.out };

    /* grace: deliveries of the last tick in the window still in flight */
    await sleep(Math.min(A.intervalMs, 2000));

    /* ---- report */
    for (const c of children) c.ch.send({ cmd: 'report', t0: s0.wall, t1: s1.wall });
    const reportBy = Date.now() + 60000;
    while (!children.every((c) => c.report || c.exited)) {
        if (Date.now() > reportBy) throw new Error('load processes did not report');
        await sleep(100);
    }
    const reps = children.map((c) => c.report).filter(Boolean);
    const all = [];
    const perTick = new Map();
    for (const r of reps) {
        for (const [pub, a] of Object.entries(r.ticks)) {
            let t = perTick.get(pub);
            if (!t) { t = []; perTick.set(pub, t); }
            for (const x of a) { all.push(x); t.push(x); }
        }
    }
    out.latency = summary(all);
    out.ticksSeen = perTick.size;
    /* collector cycles completed in the window (bridge's counter): each should reach every client */
    out.cycles = k1.cycles - k0.cycles;
    out.expectedMessages = out.cycles * out.opened;
    out.bridgeSentMetrics = k1.sentMetrics - k0.sentMetrics;
    out.bridgeSentMessages = k1.sentAll - k0.sentAll;
    out.droppedMetrics = k1.dropped - k0.dropped; /* superseded before written (latest wins) */
    out.perTick = [...perTick.entries()].sort((x, y) => Number(x[0]) - Number(y[0]))
        .map(([pub, a]) => ({ publishedMs: Number(pub), ...summary(a) }));
    out.metricsBytes = { min: Math.min(...reps.map((r) => r.minBytes || Infinity)),
                         max: Math.max(...reps.map((r) => r.maxBytes)) };
    const ev = new Map();
    for (const r of reps) {
        for (const [k, e] of Object.entries(r.events)) {
            const g = ev.get(k);
            if (!g) ev.set(k, { ...e });
            else { g.first = Math.min(g.first, e.first); g.last = Math.max(g.last, e.last); g.n += e.n; }
        }
    }
    const spreads = [...ev.values()].map((e) => e.last - e.first);
    out.events = {
        distinct: ev.size,
        received: reps.reduce((s, r) => s + r.eventsRecv, 0),
        complete: [...ev.values()].filter((e) => e.n === out.opened).length,
        spread: summary(spreads),
        latency: summary(reps.flatMap((r) => r.evLat)),
        unmatched: reps.reduce((s, r) => s + r.evUnmatched, 0),
    };
    out.closedDuringRun = reps.reduce((s, r) => s + r.closedAfterOpen, 0);
    out.closeCodes = {};
    for (const r of reps) for (const [k, v] of Object.entries(r.closeCodes)) out.closeCodes[k] = (out.closeCodes[k] || 0) + v;
    out.failReasons = {};
    for (const r of reps) for (const [k, v] of Object.entries(r.failReasons)) out.failReasons[k] = (out.failReasons[k] || 0) + v;
    out.unparsable = reps.reduce((s, r) => s + r.unparsable, 0);
    out.loadLoopDelayP99Ms = Math.max(...reps.map((r) => r.loopDelayP99Ms));
    out.loadLoopDelayMaxMs = Math.max(...reps.map((r) => r.loopDelayMaxMs));

    const n = out.opened || 1;
    out.rssPerClientConnectedB = Math.round(((out.rssConnectedKb - out.rss0Kb) * 1024) / n);
    out.rssPerClientEndB = Math.round(((out.rssEndKb - out.rss0Kb) * 1024) / n);
    out.rssPerClientMaxB = Math.round(((out.rssMaxKb - out.rss0Kb) * 1024) / n);
    out.cpuUsPerClientTick = +(((out.bridgeCores - out.baselineCores) * A.intervalMs * 1000) / n).toFixed(2);

    for (const c of children) if (!c.exited) c.ch.send({ cmd: 'close' });
    const exitBy = Date.now() + 15000;
    while (!children.every((c) => c.exited) && Date.now() < exitBy) await sleep(100);
    killAll();

    const L = out.latency;
    log(`[N=${A.n}] latency p50 ${L.p50} p99 ${L.p99} max ${L.max} ms over ${L.n}/${out.expectedMessages} messages; ` +
        `bridge ${(out.bridgeCores * 100).toFixed(1)}% (service thread ${(out.serviceCores * 100).toFixed(1)}%), ` +
        `RSS/client ${out.rssPerClientEndB} B; events ${out.events.received}, spread p99 ${out.events.spread.p99} ms`);
    process.stdout.write(JSON.stringify(out) + '\n');
}

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
main().catch((e) => { console.error('bench.js:', e.message); process.exit(1); });
