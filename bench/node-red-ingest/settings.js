// Node-RED settings of the ingest benchmark's peer (bench/ingest.py, phase node-red, starts it with this file).
// Offline and loopback only: no editor and no admin API (httpAdminRoot false); the one HTTP route, the
// flow's GET /stats, listens on 127.0.0.1. No secret is in any file: the broker and InfluxDB credentials are
// ${BENCH_...} references (flows_cred.json, unencrypted on purpose because it holds no secret), resolved
// from the environment at start.
const fs = require("fs");

const registryFile = process.env.BENCH_NODE_RED_REGISTRY;

module.exports = {
    flowFile: "flows.json",
    credentialSecret: false,
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.BENCH_NODE_RED_PORT || 1880),
    httpAdminRoot: false,
    httpNodeRoot: "/",
    disableEditor: true,
    logging: {console: {level: "warn", metrics: false, audit: false}},
    diagnostics: {enabled: false},
    runtimeState: {enabled: false},
    telemetry: {enabled: false, updateNotification: false},
    externalModules: {autoInstall: false, palette: {allowInstall: false}, modules: {allowInstall: false}},
    editorTheme: {projects: {enabled: false}},
    functionExternalModules: false,
    // The registry the function node validates against (global.get("registry")), loaded once at start:
    // {kinds: {kind: {measurement, metrics: {name: {unit, boolean}}}}, devices: {id: {kind, gateway, gemeente, wijk}}}.
    functionGlobalContext: {
        registry: registryFile ? JSON.parse(fs.readFileSync(registryFile, "utf8")) : {kinds: {}, devices: {}},
    },
};
