"""Our claim as a first attempt usually writes it: a new session, client and event loop on every invocation.

Nothing survives between invocations, so each one pays for a client (endpoint rules, credentials, a new
connection) and discovers candidates with a `Query` of its own before the claim.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.contenders import created
from benchmarks.contenders.observed import observed
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from codepool.runtime import Container
from issuer.requests import parse_issue_body


async def _claim(request: IssueRequest) -> dict[str, Any]:
    async with Container.open() as container:
        result = await issue_codes(container.components, request)
    return result.codes[0].to_json()


def _issue(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    record = asyncio.run(_claim(parse_issue_body(event.get("body"))))
    return record["pool"], created(record)


lambda_handler = observed("naive", _issue)
