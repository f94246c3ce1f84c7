// Node-RED settings of the benchmark peer (bench/rules_service.py starts it with this file).
// Offline and loopback only: no editor and no admin API (httpAdminRoot false); the one HTTP route, the
// flow's GET /stats, listens on 127.0.0.1. No secret is in any file: the flow's broker credentials are
// ${BENCH_MQTT_USER} / ${BENCH_MQTT_PASSWORD} references (flows_cred.json, unencrypted on purpose because
// it holds no secret), resolved from the environment at start.
const fs = require("fs");
const crypto = require("crypto");

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
    // What the function node gets through global.get(): the city (device -> kind, gateway, wijk; each wijk's
    // street lights and traffic lights), crypto for command ids, and a CLOCK_MONOTONIC clock in seconds
    // that the Python side can compare with time.monotonic().
    functionGlobalContext: {
        registry: registryFile ? JSON.parse(fs.readFileSync(registryFile, "utf8")) : {devices: {}, wijken: {}, gemeenten: {}},
        crypto,
        hrtime: () => Number(process.hrtime.bigint()) / 1e9,
    },
};
