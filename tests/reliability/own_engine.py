"""Each reliability test gets a DynamoDB Local of its own (it freezes or restarts it) and both handlers on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import issuer.app
import refiller.app
from localdev.engines import DynamoDBLocal, EngineMissingError
from tests.support.tables import make_table


def own_engine_with_handlers(
    monkeypatch: pytest.MonkeyPatch, timeouts: dict[str, str], db_path: Path | None = None
) -> Iterator[DynamoDBLocal]:
    try:
        engine = DynamoDBLocal(db_path=db_path).start()
    except EngineMissingError as exc:
        pytest.fail(f"this test needs AWS DynamoDB Local: {exc}", pytrace=False)
    settings = make_table(engine.endpoint_url)
    environment = {**timeouts, "AWS_ENDPOINT_URL_DYNAMODB": engine.endpoint_url, "TABLE_NAME": settings.table_name}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("POOLS_FILE", raising=False)
    issuer.app.container.close()
    refiller.app.container.close()
    try:
        yield engine
    finally:
        issuer.app.container.close()
        refiller.app.container.close()
        engine.stop()
