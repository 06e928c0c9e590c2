"""Render `latest.json` into `latest.md`, the PNG plots and the results section of `benchmarks/README.md`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_BEGIN = "<!-- results:begin (rendered by `python -m benchmarks`; edit benchmarks/report.py instead) -->"
RESULTS_END = "<!-- results:end -->"
CONTENDERS = {
    "ours": "ours (pool claim, aioboto3, one loop + client per container)",
    "on_demand": "on-demand (demo's algorithm: random code + conditional PutItem, async)",
    "naive": "naive (our claim, new session/client + asyncio.run per call)",
    "sync": "sync (our claim with boto3)",
}
HANDLER = "issuer.app"
ANCHORS = [
    ("Rust 1.50 (new client per call)", "38", "37-48", "36"),
    ("Go 1.15", "98", "5-24", "48"),
    ("plain Java 11", "4791", "68-559", "149-211"),
    ("Micronaut Java 11", "4791", "87-534", "211-213"),
]


SEED_COST_BASELINE_USD = 3.22
"""Ours per million codes at 0 % fill when issue #11 was filed: the cost target is that it does not grow."""
COLD_STARTS_REQUIRED = 11


def _range(values: list[float], digits: int = 2, unit: str = "") -> str:
    return f"[{values[0]:.{digits}f}, {values[1]:.{digits}f}]{unit}"


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    hot, table, fill, refill = results["hot_path"], results["lambda_table"], results["fill_sweep"], results["refill"]
    ours, naive = table["ours"], table["naive"]
    cost = results["cost"]

    def target(name: str, figure: str, met: bool, spread: str = "") -> dict[str, Any]:
        return {"target": name, "figure": figure, "spread": spread, "met": met}

    per_code = hot["requests_per_code"]
    rows = [
        target("requests per code ≤ 1.05 at c1", f"{per_code['c1']:.3f}", per_code["c1"] <= 1.05),
        target("requests per code ≤ 1.05 at c16", f"{per_code['c16']:.3f}", per_code["c16"] <= 1.05),
        target("requests per code ≤ 1.15 at c64", f"{per_code['c64']:.3f}", per_code["c64"] <= 1.15),
        target(
            "requests per code ≤ 1.1 at 99 % fill (on-demand ≈ 100)",
            f"{fill['pool']['99']:.3f} (on-demand {fill['on_demand']['99']:.1f})",
            fill["pool"]["99"] <= 1.1,
        ),
        target(
            "warm ratio ≤ 1.10 (handler ÷ bare two-item TransactWriteItems, same client)",
            # Three decimals: the second one is the threshold's, so 1.10 could be either side of it.
            f"{hot['warm_ratio_transaction']:.3f} (÷ bare UpdateItem: {hot['warm_ratio']:.2f})",
            hot["warm_ratio_transaction"] <= 1.10,
            f"{_range(hot['warm_ratio_transaction_range'])} over {hot['warm_blocks']} blocks",
        ),
    ]
    for level in ("c16", "c64"):
        ratio = hot["throughput_ratio"][level]
        measured = hot["levels"][level]
        rows.append(
            target(
                f"throughput ≥ 0.9 x bare transactions at {level} (same workers, same engine)",
                f"{ratio:.2f} ({measured['codes_per_s']:.0f} codes/s vs {measured['bare_transactions_per_s']:.0f}/s)",
                ratio >= 0.9,
                f"{_range(hot['throughput_ratio_range'][level])} over {measured['repetitions']} repetitions",
            )
        )
    equal = refill["in_flight"] == refill["raw_in_flight"]
    rows += [
        target(
            "refill ≥ 0.9 x raw BatchWriteItem at equal concurrency, < 1 % of the keyspace issued",
            f"{refill['ratio']:.2f} ({refill['codes_per_s']:.0f} vs {refill['raw_items_per_s']:.0f}/s; "
            f"{refill['in_flight']} vs {refill['raw_in_flight']} in flight; {refill['fill_fraction']:.2g} issued)",
            refill["ratio"] >= 0.9 and equal and refill["fill_fraction"] < 0.01,
            f"{_range(refill['ratio_range'])} over {refill['rounds']} rounds",
        ),
        target(
            f"cold request (init + first) ≤ naive's at the median and the worst of ≥ {COLD_STARTS_REQUIRED}",
            f"{ours['cold_request_ms']:.0f} ms vs naive {naive['cold_request_ms']:.0f} ms; worst "
            f"{ours['cold_request_range_ms'][1]:.0f} vs {naive['cold_request_range_ms'][1]:.0f} ms",
            ours["cold_request_ms"] <= naive["cold_request_ms"]
            and ours["cold_request_range_ms"][1] <= naive["cold_request_range_ms"][1]
            and ours["cold_starts"] >= COLD_STARTS_REQUIRED,
            f"ours {_range(ours['cold_request_range_ms'], 0)}, naive {_range(naive['cold_request_range_ms'], 0)} ms "
            f"over {ours['cold_starts']} cold starts",
        ),
        target(
            "max memory ≤ 64 MB",
            f"{ours['max_memory_mb']:.1f} MB",
            ours["max_memory_mb"] <= 64,
            f"{_range(ours['max_memory_range_mb'], 1)} MB",
        ),
        target(
            f"cost per million codes at 0 % fill does not grow (≤ ${SEED_COST_BASELINE_USD:.2f})",
            f"${cost['ours']['usd_per_million_codes']:.2f} (seed's on-demand: "
            f"${cost['on_demand_empty_keyspace_usd_per_million_codes']:.2f})",
            cost["ours"]["usd_per_million_codes"] <= SEED_COST_BASELINE_USD,
        ),
    ]
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    meta, table = results["meta"], results["lambda_table"]
    lines = [
        f"Measured {meta['date']} with `{meta['command']}` on {meta['machine']['platform']}, "
        f"{meta['machine']['cpus']} CPUs, Python {meta['machine']['python']}, engine: {meta['engine']}. "
        f"Total wall time {meta['wall_seconds']:.0f} s."
        + (" **Quick run: smaller sizes, not comparable.**" if meta["quick"] else ""),
        "",
        f"### Lambda table (local emulation, {table['ours']['cold_starts']} cold starts each; median, min-max)",
        "",
        f"Memory configured: {meta['memory_configured_mb']} MB ({meta['memory_source']}).",
        "",
        "| contender | init ms | durations of requests 1-5, ms | billed ms | max memory MB | cold request ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in CONTENDERS.items():
        row = table[name]
        lo, hi = row["init_range_ms"]
        mlo, mhi = row["max_memory_range_mb"]
        clo, chi = row["cold_request_range_ms"]
        durations = " / ".join(f"{d:.1f}" for d in row["duration_ms"])
        billed = " / ".join(str(int(b)) for b in row["billed_ms"])
        lines.append(
            f"| {label} | {row['init_ms']:.0f} ({lo:.0f}-{hi:.0f}) | {durations} | {billed} "
            f"| {row['max_memory_mb']:.1f} ({mlo:.1f}-{mhi:.1f}) | {row['cold_request_ms']:.0f} ({clo:.0f}-{chi:.0f}) |"
        )
    lines += [
        "",
        "Init = spawn of a fresh interpreter until the handler module is imported (for ours: interpreter start "
        f"≈ {table['ours']['interpreter_start_ms']:.0f} ms, handler import ≈ {table['ours']['import_ms']:.0f} ms). "
        "The first request includes creating the client (every contender creates it lazily, as ours must).",
        *_import_lines(results["cold_start"]),
        "",
        "### The demo's published figures (measured on AWS Lambda, 512 MB; not by us)",
        "",
        "| implementation | init ms | warm duration ms | max memory MB |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {name} | {init} | {warm} | {memory} |" for name, init, warm, memory in ANCHORS),
    ]
    hot = results["hot_path"]
    lines += [
        "",
        f"### Hot path: warm containers claiming from a pool of {hot['pool_size']:,} codes",
        "",
        "| workers | codes | requests / code | WRU / code | RRU / code | codes/s | latency p50 / p99 ms "
        "| bare transactions/s | throughput ratio | client CPU µs / code (bare) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in hot["levels"].values():
        lat = level["latency_ms"]
        lo, hi = level["throughput_ratio_range"]
        lines.append(
            f"| {level['workers']} | {level['codes']} | {level['requests_per_code']:.3f} | {level['wru_per_code']:.2f} "
            f"| {level['rru_per_code']:.3f} | {level['codes_per_s']:.0f} | {lat['median']:.1f} / {lat['p99']:.1f} "
            f"| {level['bare_transactions_per_s']:.0f} | **{level['throughput_ratio']:.2f}** ({lo:.2f}-{hi:.2f}) "
            f"| {level['cpu_us_per_code']:.0f} ({level['bare_cpu_us_per_transaction']:.0f}) |"
        )
    floor, transact = hot["floor_ms"], hot["transact_floor_ms"]
    some = next(iter(hot["levels"].values()))
    lines += [
        "",
        f"Codes/s and bare transactions/s are medians of {some['repetitions']} repetitions of "
        f"{'/'.join(str(lv['codes_per_repetition']) for lv in hot['levels'].values())} codes (and as many bare "
        f"transactions) each, run in {some['blocks_per_repetition']} alternating blocks; the throughput ratio "
        "(ours ÷ bare, paired by repetition) is their median (min-max). Bare: the same workers, clients and closed "
        "loop sending one two-item `TransactWriteItems` of our claim's shape (delete a slot on "
        "`attribute_exists(pk)`, put an issued-code record on `attribute_not_exists(pk)`, client request token) "
        "per iteration. Client CPU is this process's (all workers share it and the two cores with the engine).",
        "",
        f"Warm ratio: our handler {hot['handler_warm_ms']['median']:.2f} ms ÷ a bare two-item `TransactWriteItems` "
        f"of the claim's shape {transact['median']:.2f} ms on the same client = "
        f"**{hot['warm_ratio_transaction']:.3f}** ({_range(hot['warm_ratio_transaction_range'])} over "
        f"{hot['warm_blocks']} blocks in separate cold-started containers; {hot['warm_samples']} interleaved "
        f"triples in all): {hot['handler_overhead_ms']:.2f} ms "
        f"({_range(hot['handler_overhead_range_ms'])}) of our own work per request. ÷ bare `UpdateItem` "
        f"{floor['median']:.2f} ms: {hot['warm_ratio']:.2f} ({_range(hot['warm_ratio_range'])}). "
        "Request units are priced by DynamoDB's rules (DynamoDB Local "
        f"itself reported {hot['engine_wru_per_code']:.2f} WRU per code: it under-counts transactions).",
    ]
    fill = results["fill_sweep"]
    lines += [
        "",
        f"### Keyspace fill sweep: {fill['digits']}-digit numeric codes ({fill['keyspace']:,})",
        "",
        "| issued | on-demand requests / code | pool claim requests / code | pool refill requests / code written |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for level, measured in fill["levels"].items():
        pool = measured["pool"]
        error = " (refill stopped early: " + pool["refill_error"] + ")" if pool["refill_error"] else ""
        lines.append(
            f"| {level} % (actual {measured['fill']:.2%}) | {measured['on_demand']['requests_per_code']:.2f} "
            f"| {pool['requests_per_code']:.3f} | {pool['refill_requests_per_code']:.2f}{error} |"
        )
    refill = results["refill"]
    phases = refill["phases_last_round"]
    lines += [
        "",
        f"Pre-filled {fill['prefill_items']:,} issued codes with raw signed `BatchWriteItem` in "
        f"{fill['prefill_seconds']:.0f} s.",
        "",
        "### Refill throughput",
        "",
        f"`refill_pool` wrote **{refill['codes_per_s']:.0f} codes/s**; raw `BatchWriteItem` of pre-built slot items "
        f"**{refill['raw_items_per_s']:.0f} items/s**: ratio **{refill['ratio']:.2f}** "
        f"({_range(refill['ratio_range'])}, paired by round), medians of {refill['rounds']} alternating rounds of "
        f"{refill['codes_per_round']:,}. Concurrency, measured (botocore `before-send` to `response-received`): the "
        f"refill had at most **{refill['in_flight']} `BatchWriteItem`** in flight "
        f"({refill['in_flight_all_requests']} requests of any kind; time-weighted mean "
        f"{refill['mean_in_flight']:.1f} `BatchWriteItem`, {refill['mean_in_flight_all_requests']:.1f} in all), "
        f"raw at most **{refill['raw_in_flight']}** (mean {refill['raw_mean_in_flight']:.1f}). Issued when the "
        f"refill ran: {refill['issued_in_keyspace']:,} codes of a keyspace of {refill['keyspace']:,} "
        f"(fill fraction {refill['fill_fraction']:.2g}). Client CPU: "
        f"{refill['cpu_us_per_code']:.0f} µs per code (raw: {refill['raw_cpu_us_per_item']:.0f} µs per item); "
        f"{refill['requests_per_code']:.3f} requests per code. Last round: {phases['total_s']:.2f} s in all; "
        f"summed over the check-then-write steps that run concurrently, the never-issued checks were busy "
        f"{phases['check_s']:.2f} s and the slot writes {phases['write_s']:.2f} s (requests by operation: "
        + ", ".join(f"{op} {n}" for op, n in refill["by_operation"].items())
        + ").",
    ]
    cost = results["cost"]
    prices = cost["prices"]
    lines += [
        "",
        f"### Cost at {prices['region']} {prices['mode']} prices (${prices['usd_per_million_wru']} per million WRU, "
        f"${prices['usd_per_million_rru']} per million RRU, since {prices['effective']})",
        "",
        f"Ours: claim {cost['ours']['claim_wru_per_code']:.2f} WRU + {cost['ours']['claim_rru_per_code']:.3f} RRU, "
        f"refill {cost['ours']['refill_wru_per_code']:.2f} WRU + {cost['ours']['refill_rru_per_code']:.3f} RRU per "
        f"code = **${cost['ours']['usd_per_million_codes']:.2f} per million codes** (empty keyspace), against "
        f"${cost['on_demand_empty_keyspace_usd_per_million_codes']:.2f} for the seed's on-demand algorithm (one "
        "conditional `PutItem`, 1 WRU): a claim is a two-item transaction (2 x 2 WRU) and every code is written "
        f"once more as a slot by the refill. Excludes {prices['excludes']}.",
        "",
        "| issued | ours $ / million codes | on-demand $ / million codes |",
        "| ---: | ---: | ---: |",
        *(f"| {lv} % | {c['ours']:.2f} | {c['on_demand']:.2f} |" for lv, c in cost["by_fill"].items()),
        "",
        "### Targets",
        "",
        "| target | measured | spread (min-max) | |",
        "| --- | --- | --- | --- |",
        *(
            f"| {t['target']} | {t['figure']} | {t['spread']} | {'met' if t['met'] else '**missed**'} |"
            for t in results["targets"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _import_lines(cold_start: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Import breakdown (`{cold_start['command']}`, median of {cold_start['runs']} fresh interpreters; "
        f"`{HANDLER}` {cold_start['handler_cumulative_us'] / 1000:.0f} ms cumulative, "
        f"{_range([v / 1000 for v in cold_start['handler_cumulative_range_us']], 0)} ms; every import of the "
        f"interpreter, startup included, {cold_start['total_us'] / 1000:.0f} ms):",
        "",
        "| module (by cumulative time) | cumulative ms | self ms | | package (self time summed) | ms |",
        "| --- | ---: | ---: | --- | --- | ---: |",
    ]
    modules, packages = cold_start["import_breakdown"], cold_start["import_by_package"]
    for index in range(max(len(modules), len(packages))):
        module = modules[index] if index < len(modules) else None
        package = packages[index] if index < len(packages) else None
        left = (
            f"{'· ' * module['depth']}`{module['module']}` | {module['cumulative_us'] / 1000:.1f} "
            f"| {module['self_us'] / 1000:.1f}"
            if module
            else " | |"
        )
        right = f"`{package['package']}` | {package['self_us'] / 1000:.1f}" if package else " |"
        lines.append(f"| {left} | | {right} |")
    direct = ", ".join(
        f"`{row['module']}` {row['cumulative_us'] / 1000:.0f}" for row in cold_start.get("handler_direct_imports", [])
    )
    if direct:
        lines += ["", f"What `{HANDLER}` imports itself, cumulative ms: {direct}."]
    return lines


def render_plots(results: dict[str, Any], directory: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warm = results["warm_runs"]
    labels = [*warm, "bare UpdateItem", "bare TransactWriteItems"]
    hot = results["hot_path"]
    data = [warm[name]["warm_ms"] for name in warm] + [hot["floor_samples_ms"], hot["transact_floor_samples_ms"]]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.boxplot(data, vert=False, showfliers=True, whis=(1, 99))
    axes.set_yticks(range(1, len(labels) + 1), labels)
    axes.set_xscale("log")
    axes.set_xlabel("warm invocation duration, ms (log scale; whiskers p1-p99)")
    axes.set_title("Warm latency per contender (local emulation, DynamoDB Local)")
    figure.tight_layout()
    figure.savefig(directory / "latency.png", dpi=110)
    plt.close(figure)

    fill = results["fill_sweep"]
    levels = list(fill["levels"])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(levels, [fill["on_demand"][lv] for lv in levels], "o-", label="on-demand (random + PutItem)")
    axes.plot(levels, [fill["pool"][lv] for lv in levels], "s-", label="pool claim")
    total = [fill["pool"][lv] + fill["levels"][lv]["pool"]["refill_requests_per_code"] for lv in levels]
    axes.plot(levels, total, "^--", label="pool claim + refill")
    axes.set_yscale("log")
    axes.set_xlabel("keyspace issued, %")
    axes.set_ylabel("DynamoDB requests per issued code")
    axes.set_title(f"{fill['digits']}-digit keyspace ({fill['keyspace']:,} codes)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(directory / "fill_sweep.png", dpi=110)
    plt.close(figure)
    return ["latency.png", "fill_sweep.png"]


def write_outputs(results: dict[str, Any], directory: Path, readme: Path | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(results)
    (directory / "latest.md").write_text("# Benchmark results\n\n" + markdown, encoding="utf-8")
    render_plots(results, directory)
    if readme is not None and readme.is_file():
        text = readme.read_text(encoding="utf-8")
        head, _, rest = text.partition(RESULTS_BEGIN)
        _, _, tail = rest.partition(RESULTS_END)
        if rest:
            readme.write_text(f"{head}{RESULTS_BEGIN}\n{markdown}{RESULTS_END}{tail}", encoding="utf-8")
