"""`GET /codes/{code}` through the issuer's handler with DynamoDB unreachable: a wrong check character is answered
`400 invalid_code`, and text no pool's format accepts `404`, both without a read (a read would have been a 503)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import issuer.app
from codepool.formats import CodeFormat
from tests.support.events import call, rest

TICKETS = CodeFormat(alphabet="numeric", length=7, check="damm", prefix="T-")


@pytest.fixture
def unreachable_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    pools = tmp_path / "pools.toml"
    pools.write_text('[pools.tickets]\nalphabet = "numeric"\nlength = 7\ncheck = "damm"\nprefix = "T-"\n')
    monkeypatch.setenv("POOLS_FILE", str(pools))
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")  # nothing listens: any read fails
    monkeypatch.setenv("DYNAMODB_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("REQUEST_BUDGET_SECONDS", "2")
    issuer.app.container.close()
    yield
    issuer.app.container.close()


def test_a_wrong_check_character_is_400_invalid_code_without_a_read(unreachable_store: None) -> None:
    code = TICKETS.generate()
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)
    status, _, body = call(rest("GET", f"/codes/{typo.lower()}"))
    assert (status, body["error"]["code"]) == (400, "invalid_code")
    assert "check character" in body["error"]["message"]


def test_text_no_format_accepts_is_404_without_a_read(unreachable_store: None) -> None:
    status, _, body = call(rest("GET", "/codes/T-12"))
    assert (status, body["error"]["code"]) == (404, "code_not_found")


def test_a_well_formed_code_is_looked_up_so_the_unreachable_store_answers(unreachable_store: None) -> None:
    # The control: the same store, asked for a code that could exist, is a 503, so the two above never read.
    status, _, body = call(rest("GET", f"/codes/{TICKETS.generate()}"))
    assert (status, body["error"]["code"]) == (503, "store_unavailable")
