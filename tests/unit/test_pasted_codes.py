"""Codes pasted from documents and mail: a word processor's en dash or a no-break space between groups is a separator
like `-` and ` `, for `compact` and so for every look-up, and `GET /codes/{code}` routes such text to the look-up."""

from __future__ import annotations

import asyncio
import sys
import unicodedata

import pytest

import issuer.app
from codepool.components import Components
from codepool.config import DEFAULT_POOL
from codepool.formats import SEPARATORS, compact
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from tests.support.events import call, load_event, rest
from tests.support.fake_issuer import FakeContainerHolder
from tests.support.fakes import InMemoryRepository
from tests.unit.test_issuer_bad_input import POOLS, repository  # noqa: F401 - the fixture

UNICODE_SEPARATORS = {
    char for char in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(char) in ("Pd", "Zs")
} | {"\u2212", "\u200b"}
"""Every dash and space character of this Python's Unicode database, the minus sign and the zero-width space."""
PASTED = ["\u2013", "\u2014", "\u2011", "\u2212", "\u00a0", "\u202f", "\u2009", "\u3000", "\u200b"]
"""En dash, em dash, non-breaking hyphen, minus sign, no-break space, narrow no-break space, thin space, ideographic
space, zero-width space: what word processors, mail clients and web pages put between groups."""


def test_compact_drops_every_unicode_dash_and_space_and_nothing_else() -> None:
    dropped = {char for char in map(chr, range(sys.maxunicode + 1)) if not compact(char)}
    assert dropped == UNICODE_SEPARATORS | SEPARATORS


@pytest.mark.parametrize("separator", PASTED, ids=[f"U+{ord(char):04X}" for char in PASTED])
def test_a_pasted_code_resolves_like_a_typed_one(separator: str) -> None:
    fmt = DEFAULT_POOL.format
    assert fmt.resolve(f"lawx{separator}2jah") == fmt.resolve("lawx-2jah") == "LAWX2JAH"


@pytest.fixture
def issued(repository: InMemoryRepository, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811 - the fixture
    """A code issued on the fake behind `issuer.app.lambda_handler`."""
    monkeypatch.setattr(issuer.app, "container", FakeContainerHolder(repository, POOLS))
    result = asyncio.run(issue_codes(Components.over(repository, POOLS), IssueRequest(pool=DEFAULT_POOL.name)))
    return result.codes[0].code


@pytest.mark.parametrize("separator", PASTED, ids=[f"U+{ord(char):04X}" for char in PASTED])
def test_get_codes_finds_a_code_pasted_with_a_unicode_separator(issued: str, separator: str) -> None:
    pasted = f"{issued[:4].lower()}{separator}{issued[4:].lower()}"
    status, _, body = call(rest("GET", f"/codes/{pasted}"))  # a REST path as `serve` decodes it
    assert status == 200, body
    assert body["code"] == issued

    v2 = load_event("http-api-v2-post-codes.json")  # an HTTP API delivers rawPath decoded
    v2["rawPath"] = v2["requestContext"]["http"]["path"] = f"/codes/{pasted}"
    v2["requestContext"]["http"]["method"] = "GET"
    v2["routeKey"] = v2["requestContext"]["routeKey"] = "GET /codes/{code}"
    v2["body"] = None
    status, _, body = call(v2)
    assert status == 200, body
    assert body["code"] == issued
