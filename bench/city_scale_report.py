"""Figures and tables of bench/city_scale.py: what a step sustained, whether it broke and why, the Markdown."""

from __future__ import annotations

from typing import Any

from bench import city_scale_services as sv
from bench.ingest_support import Influx
from bench.rules_service_report import latency_stats, percentile

KIND_MEASUREMENTS = ("street_light", "occupancy", "rain_gauge", "traffic_light")


def influx_counts(db: Influx, name: str, wall_from: float, wall_to: float) -> int:
    """Readings (field values) stored in the kind measurements with a time in [wall_from, wall_to)."""
    where = f"time >= {int(wall_from * 1e9)} AND time < {int(wall_to * 1e9)}"
    series = db.statement(f"SELECT count(*) FROM {','.join(KIND_MEASUREMENTS)} WHERE {where}", name)
    return sum(int(v or 0) for s in series for v in s["values"][0][1:])


def latency(triggers: list[tuple[float, str, str]], commands: list[tuple[float, str, str, Any]],
            wijk_of: dict[str, str], period: float) -> dict[str, Any]:
    """bench/rules_service_report.latency_stats (first dim 100 of the wijk after the presence), plus p95."""
    out = latency_stats(triggers, commands, wijk_of, period)
    firsts = []
    by_wijk: dict[str, list[float]] = {}
    for t, device, action, value in commands:
        if action == "dim" and value == 100 and device in wijk_of:
            by_wijk.setdefault(wijk_of[device], []).append(t)
    for t_pub, _gw, device in triggers:
        later = [t for t in by_wijk.get(wijk_of.get(device, ""), []) if t_pub <= t < t_pub + period * 0.9]
        if later:
            firsts.append((min(later) - t_pub) * 1000)
    return out | {"p95_ms": percentile(firsts, 0.95)}


def at(samples: list[dict[str, Any]], t: float, key: str) -> float:
    """A counter's value at monotonic time t, interpolated between the samples around it."""
    prev = samples[0]
    for s in samples:
        if s["t"] >= t:
            if s["t"] == prev["t"]:
                return float(s[key])
            f = (t - prev["t"]) / (s["t"] - prev["t"])
            return float(prev[key] + f * (s[key] - prev[key]))
        prev = s
    return float(samples[-1][key])


def nearest(samples: list[dict[str, Any]], t: float) -> dict[str, Any]:
    return min(samples, key=lambda s: abs(s["t"] - t))


def judge(step: dict[str, Any], p99_bound: float, drain_bound: float) -> dict[str, Any]:
    """Sustained rates, backlogs at the end of publishing, CPU and RSS per process, and what broke."""
    sent, samples = step["sent"], step["samples"]
    t0, t1 = sent["t_first"], sent["t_sent"]
    window = max(1e-6, t1 - t0)
    base = step["base_totals"]
    out: dict[str, Any] = {"offered": sent["records"] / window}
    for kind in ("ingest", "rules"):
        key = f"{kind}_records"
        out[f"{kind}_rate"] = (at(samples, t1, key) - at(samples, t0, key)) / window
        out[f"{kind}_backlog"] = max(0.0, sent["records"] - (at(samples, t1, key) - base[key]))
    a, b = nearest(samples, t0), nearest(samples, t1)
    out["cpu_pct"] = sv.cpu_between(a, b, max(1e-6, b["t"] - a["t"]))
    out["rss_end"] = b["rss"]
    out["rss_peak"] = {k: max(s["rss"].get(k, 0.0) for s in samples) for k in b["rss"]}
    out["pending_lines_max"] = max(s["pending_lines"] for s in samples)
    out["spool_bytes_max"] = max(s["spool_bytes"] for s in samples)
    procs = {k: v for k, v in out["cpu_pct"].items() if k not in ("others", "bench", "listener")}
    top = max(procs, key=lambda k: procs[k])
    out["busiest"] = f"{top} {procs[top]:.0f} %"
    busy = sum(v for v in out["cpu_pct"].values())
    out["machine_pct"] = busy
    broken = []
    if step["lost"] > 0:
        broken.append(f"{step['lost']:,} readings not stored")
    if sent["refused"] or sent["unacked"]:
        broken.append(f"broker refused/unacked {sent['refused'] + sent['unacked']} packs")
    if sent["behind_max_s"] > 1.0:
        broken.append(f"the load generator fell {sent['behind_max_s']:.1f} s behind its schedule (machine full)")
    if step["drain_s"] is None:
        broken.append("backlog not drained")
    elif step["drain_s"] > drain_bound:
        broken.append(f"backlog took {step['drain_s']:.1f} s to drain (ingest {out['ingest_backlog']:,.0f}, "
                      f"rules {out['rules_backlog']:,.0f} readings behind at the end)")
    # Capacity: the platform did not keep up with what was offered (the ramp stops); latency alone does not stop it.
    out["capacity_broken"] = bool(broken)
    p99 = step["latency"]["p99_ms"]
    if step["latency"]["triggers"] and (p99 is None or p99 > p99_bound
                                        or step["latency"]["matched"] < step["latency"]["triggers"]):
        broken.append(f"latency p99 {p99 if p99 is None else round(p99)} ms > {p99_bound:g} ms or triggers unanswered "
                      f"({step['latency']['matched']}/{step['latency']['triggers']})")
    end, base = step["end_totals"], step["base_totals"]
    evals = end["evaluations"] - base["evaluations"]
    spent = end["evaluation_seconds"] - base["evaluation_seconds"]
    out["evaluation_ms_mean"] = 1000 * spent / evals if evals else None
    out["snapshots"] = end["snapshots"] - base["snapshots"]
    out["dead_letters"] = end.get("dead_letters", 0.0) - base.get("dead_letters", 0.0)
    out["rejected"] = end.get("rejected", 0.0) - base.get("rejected", 0.0)
    out["broken"] = broken
    return out


def _f(x: float | None, fmt: str = ",.0f") -> str:
    return "-" if x is None else format(x, fmt)


def report(results: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    out = [f"city scale, {meta['date']}: {meta['devices']:,} devices, {meta['gateways']} gateways, python "
           f"{meta['python']}, {meta['nproc']} cores; real cadence {meta['real_cadence_readings_s']:,.0f} readings/s "
           f"({meta['real_cadence_reports_s']:,.0f} device reports/s)", ""]
    out += ["| config | step | offered readings/s | ingest sustained | rules sustained | stored | lost | drain s "
            "| latency p50 / p95 / p99 / max ms | busiest | ingest % core | rules % core | influxd % | mosquitto % "
            "| load % | others % | broke |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in results:
        for s in c["steps"]:
            cpu, lat = s["cpu_pct"], s["latency"]
            ing = " + ".join(f"{cpu[k]:.0f}" for k in cpu if k.startswith("ingest"))
            rul = " + ".join(f"{cpu[k]:.0f}" for k in cpu if k.startswith("rules"))
            out.append(f"| {c['name']} | x{s['scale']:g} | {s['offered']:,.0f} | {s['ingest_rate']:,.0f} "
                       f"| {s['rules_rate']:,.0f} | {s['stored']:,} | {s['lost']:,} | {_f(s['drain_s'], '.1f')} "
                       f"| {_f(lat['p50_ms'], '.1f')} / {_f(lat.get('p95_ms'), '.1f')} / {_f(lat['p99_ms'], '.1f')} / "
                       f"{_f(lat['max_ms'], '.1f')} ({lat['matched']}/{lat['triggers']}) | {s['busiest']} | {ing} "
                       f"| {rul} | {cpu.get('influxd', 0):.0f} | {cpu.get('mosquitto', 0):.0f} "
                       f"| {cpu.get('load', 0):.0f} "
                       f"| {cpu.get('others', 0):.0f} | {'; '.join(s['broken']) or '-'} |")
    out += ["", "| config | step | ingest backlog at end | rules backlog at end | ingest pending lines max "
            "| spool bytes max | rules evaluation ms (mean) | rules evaluations | snapshots | commands received "
            "| mosquitto RSS MB | influxd RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in results:
        for s in c["steps"]:
            ev = s["end_totals"]["evaluations"] - s["base_totals"]["evaluations"]
            out.append(f"| {c['name']} | x{s['scale']:g} | {s['ingest_backlog']:,.0f} | {s['rules_backlog']:,.0f} "
                       f"| {s['pending_lines_max']:,.0f} | {s['spool_bytes_max']:,.0f} "
                       f"| {_f(s['evaluation_ms_mean'], '.1f')} "
                       f"| {ev:,.0f} | {s['snapshots']:.0f} | {s['commands_received']:,} "
                       f"| {s['rss_peak'].get('mosquitto', 0):.0f} | {s['rss_peak'].get('influxd', 0):.0f} |")
    out += ["", "| config | process | RSS MB after census | RSS MB end | peak (VmHWM) |", "|---|---|---:|---:|---:|"]
    for c in results:
        for k, v in c.get("rss_end", {}).items():
            if k in ("bench", "load"):
                continue
            out.append(f"| {c['name']} | {k} | {_f(c['census'].get('rss', {}).get(k), '.0f')} | {v:.0f} "
                       f"| {c['rss_peak'].get(k, 0):.0f} |")
    out += ["", "| config | series after census (exact) | of which readings | registry implies | estimated "
            "| at end | influxd RSS MB after census |", "|---|---:|---:|---:|---:|---:|---:|"]
    for c in results:
        card, end = c["census"]["cardinality"], c.get("cardinality_end", {})
        out.append(f"| {c['name']} | {card['exact_total']:,} | {card['readings_series']:,} "
                   f"| {card['expected_readings_series']:,} | {card['estimated_total']:,} "
                   f"| {end.get('exact_total', 0):,} "
                   f"| {c['census']['influxd_rss_mb']:.0f} |")
    for c in results:
        for when, card in (("after census", c["census"]["cardinality"]), ("at end", c.get("cardinality_end"))):
            if card:
                out += ["", f"{c['name']} series per measurement {when}: " + ", ".join(
                    f"{k} {v:,}" for k, v in sorted(card["per_measurement"].items()))]
    return out
