"""Our claim as a first attempt usually writes it: a new session, client and event loop on every invocation.

Nothing survives between invocations, so each one pays for a client (endpoint rules, credentials, a new
connection) and discovers candidates with a `Query` of its own before the claim.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.contenders import created
from codepool.issuing import issue_codes
from codepool.runtime import Container
from issuer.requests import parse_issue_body


async def _issue(body: str | None) -> dict[str, Any]:
    async with Container.open() as container:
        result = await issue_codes(container.components, parse_issue_body(body))
    return result.codes[0].to_json()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return created(asyncio.run(_issue(event.get("body"))))
