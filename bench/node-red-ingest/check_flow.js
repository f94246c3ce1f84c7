// A check of the flow's SenML function node, run by hand where node is installed (CI has none):
//     node bench/node-red-ingest/check_flow.js
// It runs the node's "On Start" and per-message code from flows.json outside Node-RED, with stand-ins for
// global/context/env/node, on packs with one of each kind of bad record, and exits 1 if a count or a point
// differs from what the ingest would do with them.
"use strict";
const assert = require("assert");
const path = require("path");
const flows = require(path.join(__dirname, "flows.json"));

const fn = flows.find(n => n.type === "function" && n.name.startsWith("SenML"));
const reg = {kinds: {street_light: {measurement: "street_light", metrics: {power: {unit: "W", boolean: false},
                                                                             lamp_on: {unit: null, boolean: true}}}},
             devices: {"sl-1": {kind: "street_light", gateway: "gw-a", gemeente: "GM0626", wijk: "WK062601"}}};
const g = {registry: reg}, c = {}, sent = [];
const global = {get: k => g[k], set: (k, v) => { g[k] = v; }};
const context = {get: k => c[k], set: (k, v) => { c[k] = v; }};
const env = {get: k => ({BENCH_BATCH_POINTS: "3"})[k]};
const node = {send: m => sent.push(m)};
const ticks = [];
new Function("global", "context", "env", "node", "setInterval", fn.initialize)(
    global, context, env, node, f => { ticks.push(f); return 1; });
const run = (topic, payload) => new Function("msg", "global", "context", "env", "node", fn.func)(
    {topic, payload}, global, context, env, node);

const now = Math.floor(Date.now() / 1000);
run("smartcity/v1/gw/gw-a/readings", [
    {bn: "sl-1/", bt: now, n: "power", v: 5, u: "W"},   // kept
    {n: "lamp_on", vb: true, t: 0},                    // kept, same point (same device and time)
    {n: "power", v: 6, t: 0.001},                      // kept, a second point
    {n: "power", v: 6, u: "kW"},                       // wrong_unit
    {n: "power", vb: true},                            // wrong_type
    {n: "lamp_on", v: 1},                              // wrong_type
    {n: "nope", v: 1},                                 // unknown_series
    {n: "power", v: 1, t: -8 * 86400},                 // too_late (7 days)
    {n: "power", v: 1, t: 600},                        // future (5 minutes)
    {bn: "sl-1/", bt: -1, n: "power", v: 7},           // relative time (RFC 8428): a second ago, kept
    {n: "power", v: "x"},                              // bad_record
    {n: "power"},                                      // bad_record (no value)
    {bt: now},                                         // base fields only: not a record
]);
run("smartcity/v1/gw/gw-b/readings", [{bn: "sl-1/", n: "power", v: 1}]);  // wrong_gateway
run("smartcity/v1/gw/gw-a/readings", {not: "a pack"});                    // bad_messages

const st = g.ingest_stats;
assert.deepStrictEqual(st.rejected, {wrong_unit: 1, wrong_type: 2, unknown_series: 1, too_late: 1, future: 1,
                                     bad_record: 2, wrong_gateway: 1});
assert.strictEqual(st.messages, 3);
assert.strictEqual(st.records, 13);
assert.strictEqual(st.bad_messages, 1);
assert.strictEqual(sent.length, 1, "3 points fill a batch of BENCH_BATCH_POINTS=3");
const [p1, p2, p3] = sent[0].payload;
const tags = {device: "sl-1", gateway: "gw-a", gemeente: "GM0626", wijk: "WK062601"};
assert.deepStrictEqual(p1, {measurement: "street_light", tags, fields: {power: 5, lamp_on: true}, timestamp: now * 1e6});
assert.deepStrictEqual(p2.fields, {power: 6});
assert.strictEqual(p2.timestamp, now * 1e6 + 1000);
assert.deepStrictEqual(p3.fields, {power: 7});
assert.ok(Math.abs(p3.timestamp / 1e6 - (Date.now() / 1000 - 1)) < 5, "relative time resolved against now");
run("smartcity/v1/gw/gw-a/readings", [{bn: "sl-1/", bt: now, n: "power", v: 8}]);
assert.strictEqual(sent.length, 1, "a part batch waits");
c.st.lastAt -= 1000;
ticks[0]();
assert.strictEqual(sent.length, 2, "the idle flush writes it");
assert.deepStrictEqual(sent[1].payload.map(p => p.fields), [{power: 8}]);
console.log("flow check passed:", JSON.stringify(st.rejected));
