"""A bounded run of the soak (`tests/reliability/soak.py`): the full fault mix for about a minute, in CI.

Claimer processes killed at random, DynamoDB Local frozen and restarted, and the proxy's faults; then the whole
history is checked against the table. The figures are printed with the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.soak import SoakConfig, run_soak

CONFIG = SoakConfig(
    seconds=55.0,
    seed=20261201,
    processes=12,
    kill_every=(1.0, 3.0),
    engine_trouble_every=(10.0, 14.0),
    pool_target=200,
)


def test_the_fault_mix_issues_nothing_twice_and_loses_no_acknowledged_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_soak(CONFIG, tmp_path)
    summary = result.summary()
    with capsys.disabled():
        print(f"\nfault mix: {result.report.summary()}\n{json.dumps(summary)}")
    assert result.report.valid, result.report.violations
    # The run must have exercised what it claims to, or a pass proves nothing.
    assert result.kills >= 10
    assert result.freezes >= 1
    assert result.restarts >= 1
    assert result.report.ok >= 200
    assert result.report.info >= 1, "no indeterminate operation: the faults did not bite"
    assert sum(result.fault_counts.values()) >= 50
    assert result.report.recorded >= result.report.delivered > 0
    # Every pool's statistics count exactly its records (the checker adds a violation otherwise), and every pool
    # issued codes: the case-sensitive and case-insensitive ones and the imported-only one too.
    assert set(result.counters) == {"soak", "lower", "mixed", "cards"}
    assert all(figures["records"] > 0 for figures in result.counters.values()), result.counters
    assert "can issue the same code under two keys" in result.refused_variant
