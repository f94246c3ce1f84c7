"""Figures of bench/rules_service.py: latency matching and the Markdown tables with the ratios."""

from __future__ import annotations

import bisect
from typing import Any


def percentile(xs: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not xs:
        return None
    ys = sorted(xs)
    k = (len(ys) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ys) - 1)
    return ys[lo] + (ys[hi] - ys[lo]) * (k - lo)


def latency_stats(triggers: list[tuple[float, str, str]], commands: list[tuple[float, str, str, Any]],
                  wijk_of: dict[str, str], period: float) -> dict[str, Any]:
    """Per trigger (t published, gateway, presence device): the dim-100 commands of its wijk within period.

    `first` is the first command received after the presence reading was published; `all` the last of
    that wijk's burst (one command per street light).
    """
    by_wijk: dict[str, list[float]] = {}
    for t, device, action, value in commands:
        if action == "dim" and value == 100 and device in wijk_of:
            by_wijk.setdefault(wijk_of[device], []).append(t)
    for ts in by_wijk.values():
        ts.sort()
    first, last, lights = [], [], []
    for t_pub, _gw, device in triggers:
        ts = by_wijk.get(wijk_of.get(device, ""), [])
        i = bisect.bisect_left(ts, t_pub)
        j = bisect.bisect_left(ts, t_pub + period * 0.9)
        if j > i:
            first.append((ts[i] - t_pub) * 1000)
            last.append((ts[j - 1] - t_pub) * 1000)
            lights.append(j - i)
    return {"triggers": len(triggers), "matched": len(first), "p50_ms": percentile(first, 0.5),
            "p99_ms": percentile(first, 0.99), "max_ms": max(first, default=None),
            "all_p50_ms": percentile(last, 0.5), "all_p99_ms": percentile(last, 0.99),
            "commands_per_trigger": (sum(lights) / len(lights)) if lights else None}


def _f(x: float | None, fmt: str = ",.0f") -> str:
    return format(x, fmt) if x is not None else "-"


def report(results: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """The tables: per throughput phase, the ratios per repeat, the latency phases."""
    out = [f"rules service benchmark, {meta['date']}: python {meta['python']}, {meta['nproc']} cores "
           f"(consumer pinned to core 1: {meta['pinned']}), {meta['gateways']} gateways, packs of {meta['batch']}, "
           f"{_f(meta['readings'])} readings per phase, Node-RED {meta['node_red']}, --tick {meta['tick']}", ""]
    tp = results["throughput"]
    if tp:
        out += ["| phase | readings/s (first publish -> all counted) | sustained readings/s (10-90 %) "
                "| readings per CPU-second | consumer CPU s | % of its core | RSS MB (peak) | mosquitto CPU s "
                "| others' CPU s | publisher readings/s | lost | commands |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in tp:
            cmds = ", ".join(f"{k}: {v}" for k, v in sorted(r["commands_by_kind"].items())) or "0"
            out.append(f"| {r['phase']} ({r['label']}) | {_f(r['rate'])} | {_f(r['sustained_rate'])} "
                       f"| {_f(r['per_cpu_second'])} | {r['cpu']['consumer']:.2f} "
                       f"| {_f((r['utilisation'] or 0) * 100)} "
                       f"| {r['rss_mb']:.0f} ({r['hwm_mb']:.0f}) | {r['cpu']['mosquitto']:.2f} "
                       f"| {r['cpu_others']:.2f} | {_f(r['publish_rate'])} | {r['lost']:,} | {cmds} |")
        out += ["", "| repeat | ours / Node-RED (wall) | ours / Node-RED (per CPU-s) | ours / bare (wall) "
                "| ours / bare (per CPU-s) |", "|---|---:|---:|---:|---:|"]
        reps = sorted({r["phase"].rsplit("-", 1)[1] for r in tp})
        for rep in reps:
            by = {r["kind"]: r for r in tp if r["phase"].rsplit("-", 1)[1] == rep}
            cells = []
            for other in ("node-red", "bare"):
                for key in ("rate", "per_cpu_second"):
                    a, b = by.get("ours", {}).get(key), by.get(other, {}).get(key)
                    cells.append(f"{a / b:.2f}x ({a / b:.0%})" if a and b else "-")
            out.append(f"| {rep} | {' | '.join(cells)} |")
        out.append("")
        out.append("targets: ours >= 1.5x Node-RED per core, >= 70 % of the bare subscriber")
    lat = results["latency"]
    if lat:
        out += ["", "| latency phase | readings/s offered | triggers answered | first command p50 | p99 | max "
                "| last of the wijk's burst p50 | p99 | commands per trigger | consumer % of core | others' CPU s |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in lat:
            out.append(f"| {r['label']} | {_f(r['achieved_rate'])} | {r['matched']}/{r['triggers']} "
                       f"| {_f(r['p50_ms'], '.1f')} ms | {_f(r['p99_ms'], '.1f')} ms | {_f(r['max_ms'], '.1f')} ms "
                       f"| {_f(r['all_p50_ms'], '.1f')} ms | {_f(r['all_p99_ms'], '.1f')} ms "
                       f"| {_f(r['commands_per_trigger'], '.0f')} | {r['utilisation'] * 100:.0f} "
                       f"| {r['others_cpu']:.1f} |")
        out.append("target: p99 reading -> command <= 10 ms at 20k readings/s")
    return out
