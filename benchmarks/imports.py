"""Where the handler's import time goes: `python -X importtime -c "import issuer.app"` in fresh interpreters.

Each run is a new interpreter with the emulated container's environment (bytecode caches warm, as in a
deployed package). Per module: the median over the runs of its self and cumulative time (µs), as
`-X importtime` reports them; the top modules by cumulative time, and the self time summed by top-level
package (which adds up to the whole import without counting a module twice), and the handler module's own imports
by cumulative time (what a lazy import could take off init).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections import defaultdict
from typing import Any

from benchmarks.environment import BenchEnvironment
from localdev.paths import PROJECT_ROOT

HANDLER_MODULE = "issuer.app"
PREFIX = "import time:"
MIN_DIRECT_US = 1_000
"""Direct imports of the handler module reported when they take at least this long (cumulative)."""


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) per line of `-X importtime` output, in its order."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith(PREFIX):
            continue
        fields = line.removeprefix(PREFIX).split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        name = fields[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((name.strip(), int(fields[0]), int(fields[1]), depth))
    return rows


def children_of(rows: list[tuple[str, int, int, int]], parent: str) -> list[str]:
    """The modules `parent` imported itself (depth one below it): `-X importtime` prints a module after the
    modules it imported, so they are the rows one level deeper since the previous row at the parent's level."""
    pending: list[str] = []
    for name, _, _, depth in rows:
        if depth == 0:
            if name == parent:
                return pending
            pending = []
        elif depth == 1:
            pending.append(name)
    return []


def import_breakdown(environment: BenchEnvironment, runs: int, top: int = 12) -> dict[str, Any]:
    selves: dict[str, list[int]] = defaultdict(list)
    cumulatives: dict[str, list[int]] = defaultdict(list)
    depths: dict[str, int] = {}
    totals: list[int] = []
    direct: dict[str, None] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {HANDLER_MODULE}"],
            cwd=PROJECT_ROOT,
            env=environment.child_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"-X importtime of {HANDLER_MODULE} failed: {done.stderr[-2000:]}")
        rows = parse_importtime(done.stderr)
        for name, self_us, cumulative_us, depth in rows:
            selves[name].append(self_us)
            cumulatives[name].append(cumulative_us)
            depths.setdefault(name, depth)
        totals.append(sum(self_us for _, self_us, _, _ in rows))
        direct.update(dict.fromkeys(children_of(rows, HANDLER_MODULE)))
    median_cumulative = {name: statistics.median(values) for name, values in cumulatives.items()}
    ranked = sorted(median_cumulative, key=lambda name: -median_cumulative[name])[:top]
    by_package: dict[str, float] = defaultdict(float)
    for name, values in selves.items():
        by_package[name.split(".")[0]] += statistics.median(values)
    packages = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    handler = cumulatives.get(HANDLER_MODULE, [0])
    return {
        "command": f'python -X importtime -c "import {HANDLER_MODULE}"',
        "runs": runs,
        "total_us": statistics.median(totals),
        "handler_cumulative_us": statistics.median(handler),
        "handler_cumulative_range_us": [min(handler), max(handler)],
        "import_breakdown": [
            {
                "module": name,
                "cumulative_us": median_cumulative[name],
                "self_us": statistics.median(selves[name]),
                "depth": depths[name],
            }
            for name in ranked
        ],
        "import_by_package": [{"package": name, "self_us": us} for name, us in packages],
        "handler_direct_imports": sorted(
            (
                {"module": name, "cumulative_us": median_cumulative[name]}
                for name in direct
                if median_cumulative[name] >= MIN_DIRECT_US
            ),
            key=lambda row: -row["cumulative_us"],
        ),
    }
