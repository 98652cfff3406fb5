'use strict';
/*
 * load.js - ONE load process of the WebSocket fan-out benchmark (forked by bench.js,
 * never run by hand). It opens LOAD_COUNT WebSocket connections to LOAD_URL, each bound
 * to the source address LOAD_ADDR (127.0.0.x: every source address has its own ~28k
 * ephemeral ports), at most LOAD_CONCURRENCY handshakes in flight (the connect ramp),
 * and records for every message:
 *
 *   metrics  latency = receive time - data.collector.publishedMs, where receive time is
 *            Date.now() at the top of the 'message' handler (JS onmessage) and
 *            publishedMs is the bridge collector's wall clock when it published the
 *            cycle (same machine, same clock). The FIRST metrics message of each
 *            connection is skipped (it is the cached latest, sent at connect).
 *            publishedMs is read from the raw bytes (Buffer.indexOf), so the load
 *            generator does not JSON.parse 8+ KB per message per client.
 *   events   (topic_created, topic_deleted, group_updated) receive time per event name
 *            (first and last over this process's clients: the fan-out spread), and
 *            latency = receive time - publishedMs of the metrics message that follows
 *            on the same connection: events of a cycle are published together with
 *            that cycle's metrics (one mailbox update, same publishedMs) and sent
 *            before it. A following metrics message published AFTER the event
 *            arrived belongs to a later cycle (this cycle's was superseded): then the
 *            event gets no latency and is counted in evUnmatched.
 *
 * IPC with bench.js: the child sends {type:'progress'} every 500 ms and {type:'report'}
 * on request {cmd:'report', t0, t1} (metrics samples with publishedMs in [t0, t1));
 * {cmd:'close'} closes every socket and exits. The process also exits when the parent
 * goes away (IPC disconnect) or after LOAD_MAX_S seconds, whatever happens.
 */
const WebSocket = require('ws');
const { monitorEventLoopDelay } = require('perf_hooks');

const URL_ = process.env.LOAD_URL;
const ADDR = process.env.LOAD_ADDR || '127.0.0.1';
const COUNT = parseInt(process.env.LOAD_COUNT || '0', 10);
const CONC = parseInt(process.env.LOAD_CONCURRENCY || '64', 10);
const MAX_S = parseInt(process.env.LOAD_MAX_S || '900', 10);
const RETRIES = 3;

const lifetime = setTimeout(() => process.exit(3), MAX_S * 1000);
lifetime.unref();
process.on('disconnect', () => process.exit(0));

const PUB = Buffer.from('"publishedMs":');
const TYPE_METRICS = Buffer.from('"type":"metrics"');

let opened = 0, failed = 0, closedAfterOpen = 0, attempts = 0, retried = 0;
const closeCodes = {};
const failReasons = {};
const sockets = [];

/* metrics samples: publishedMs -> array of latencies (ms) */
const byTick = new Map();
let metricsMsgs = 0, minBytes = Infinity, maxBytes = 0, firstSkipped = 0, unparsable = 0;
/* events */
const events = new Map(); /* "type name" -> {first, last, n} */
const evLat = [];
let evUnmatched = 0, eventsRecv = 0;

const loopDelay = monitorEventLoopDelay({ resolution: 10 });

function readInt(buf, at) {
    let v = 0, i = at, neg = false;
    if (buf[i] === 0x2d) { neg = true; i++; }
    const start = i;
    while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) { v = v * 10 + (buf[i] - 0x30); i++; }
    return i === start ? NaN : (neg ? -v : v);
}

function onMessage(st, data) {
    const now = Date.now();
    const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    /* json-c writes the envelope's "type" first: look only at the first bytes */
    if (buf.subarray(0, 64).indexOf(TYPE_METRICS) >= 0) {
        metricsMsgs++;
        if (buf.length < minBytes) minBytes = buf.length;
        if (buf.length > maxBytes) maxBytes = buf.length;
        const at = buf.lastIndexOf(PUB);
        const pub = at >= 0 ? readInt(buf, at + PUB.length) : NaN;
        if (!Number.isFinite(pub)) { unparsable++; return; }
        if (st.pending.length) {
            for (const t of st.pending) {
                if (pub <= t) evLat.push(t - pub);
                else evUnmatched++;
            }
            st.pending.length = 0;
        }
        if (st.first) { st.first = false; firstSkipped++; return; }
        let a = byTick.get(pub);
        if (!a) { a = []; byTick.set(pub, a); }
        a.push(now - pub);
        return;
    }
    let msg;
    try { msg = JSON.parse(buf.toString('utf8')); } catch (e) { unparsable++; return; }
    if (msg.type === 'topic_created' || msg.type === 'topic_deleted' || msg.type === 'group_updated') {
        eventsRecv++;
        const name = msg.data && (msg.data.name || msg.data.groupId);
        const key = msg.type + ' ' + name;
        let e = events.get(key);
        if (!e) { e = { first: now, last: now, n: 0 }; events.set(key, e); }
        if (now < e.first) e.first = now;
        if (now > e.last) e.last = now;
        e.n++;
        st.pending.push(now);
    }
}

function connectOne(attempt) {
    return new Promise((resolve) => {
        attempts++;
        const st = { first: true, pending: [] };
        const ws = new WebSocket(URL_, {
            localAddress: ADDR,
            perMessageDeflate: false,
            skipUTF8Validation: true, /* load generator CPU: the bridge writes UTF-8 */
            handshakeTimeout: 30000,
            maxPayload: 16 * 1024 * 1024,
        });
        let isOpen = false;
        ws.on('open', () => { isOpen = true; opened++; sockets.push(ws); resolve(true); });
        ws.on('message', (data) => onMessage(st, data));
        ws.on('unexpected-response', (req, res) => {
            const k = 'http ' + res.statusCode;
            failReasons[k] = (failReasons[k] || 0) + 1;
            req.destroy();
        });
        ws.on('error', (err) => {
            if (!isOpen) {
                const k = err.code || String(err.message).slice(0, 60);
                failReasons[k] = (failReasons[k] || 0) + 1;
            }
        });
        ws.on('close', (code) => {
            if (isOpen) {
                closedAfterOpen++;
                closeCodes[code] = (closeCodes[code] || 0) + 1;
                return;
            }
            if (attempt < RETRIES) {
                retried++;
                setTimeout(() => connectOne(attempt + 1).then(resolve), 200 * (attempt + 1));
            } else {
                failed++;
                resolve(false);
            }
        });
    });
}

async function rampUp() {
    let next = 0;
    async function worker() {
        while (next < COUNT) {
            next++;
            await connectOne(0);
        }
    }
    const workers = [];
    for (let i = 0; i < Math.min(CONC, COUNT); i++) workers.push(worker());
    await Promise.all(workers);
}

function progress() {
    process.send({ type: 'progress', opened, failed, closedAfterOpen, attempts, retried,
                   done: opened + failed >= COUNT });
}
const progressTimer = setInterval(progress, 500);

process.on('message', (m) => {
    if (m.cmd === 'mark') {
        loopDelay.reset();
        loopDelay.enable();
    } else if (m.cmd === 'report') {
        loopDelay.disable();
        const ticks = {};
        for (const [pub, a] of byTick) {
            if (pub >= m.t0 && pub < m.t1) ticks[pub] = a;
        }
        const ev = {};
        for (const [k, e] of events) ev[k] = e;
        process.send({
            type: 'report', addr: ADDR, count: COUNT, opened, failed, closedAfterOpen,
            attempts, retried, closeCodes, failReasons, metricsMsgs, firstSkipped, unparsable,
            minBytes: Number.isFinite(minBytes) ? minBytes : 0, maxBytes, ticks, events: ev,
            evLat, evUnmatched, eventsRecv,
            loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6,
        });
    } else if (m.cmd === 'close') {
        clearInterval(progressTimer);
        for (const ws of sockets) ws.terminate();
        setTimeout(() => process.exit(0), 200);
    }
});

if (!URL_ || !COUNT) {
    console.error('load.js: LOAD_URL and LOAD_COUNT are required (it is forked by bench.js)');
    process.exit(2);
}
rampUp().then(progress);
