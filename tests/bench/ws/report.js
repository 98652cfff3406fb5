'use strict';
/* report.js RESULTS.jsonl - Markdown tables from bench.js's JSON lines (run.sh). */
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const f = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '-' : Number(x).toFixed(d));
const kb = (b) => f(b / 1024, 1);
const pc = (c) => f(c * 100, 1) + '%';

console.log('| N clients | connected | metrics msg | received / expected (superseded) | p50 ms | p99 ms | max ms | bridge CPU | service thread | CPU per client per tick | RSS 0 clients | RSS per client (connected / end / max) | load gen CPU | machine busy |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
    const L = r.latency;
    console.log(`| ${r.n} | ${r.opened} | ${f(r.metricsBytes.min)}-${f(r.metricsBytes.max)} B | ${L.n} / ${r.expectedMessages} (${r.droppedMetrics}) | ${f(L.p50)} | ${f(L.p99)} | ${f(L.max)} | ` +
        `${pc(r.bridgeCores)} | ${pc(r.serviceCores)} | ${f(r.cpuUsPerClientTick, 1)} µs | ${f(r.rss0Kb / 1024, 1)} MiB | ` +
        `${kb(r.rssPerClientConnectedB)} / ${kb(r.rssPerClientEndB)} / ${kb(r.rssPerClientMaxB)} KiB | ${pc(r.loadCores)} | ${f(r.machineBusyCores, 2)} of 2 cores |`);
}
console.log('');
console.log('| N clients | events received | events complete (every client) | spread first->last client p50 / p99 / max ms | event latency p50 / p99 / max ms | burst create / delete call ms | closed during run | load loop delay p99 / max ms |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
    const E = r.events;
    console.log(`| ${r.n} | ${E.received} | ${E.complete} / ${E.distinct} | ${f(E.spread.p50)} / ${f(E.spread.p99)} / ${f(E.spread.max)} | ` +
        `${f(E.latency.p50)} / ${f(E.latency.p99)} / ${f(E.latency.max)} | ${f(r.burst.createMs)} / ${f(r.burst.deleteMs)} | ${r.closedDuringRun} | ` +
        `${f(r.loadLoopDelayP99Ms, 1)} / ${f(r.loadLoopDelayMaxMs, 1)} |`);
}
console.log('');
console.log('Per tick (publishedMs: messages, p50 / p99 / max ms):');
for (const r of rows) {
    console.log(`  N=${r.n}: ` + r.perTick.map((t) => `${t.n}: ${f(t.p50)}/${f(t.p99)}/${f(t.max)}`).join('  '));
}
