"""Our claim as a first attempt usually writes it: a new session, client and event loop on every invocation.

Nothing survives between invocations, so each one pays for a client (endpoint rules, credentials, a new
connection) and discovers candidates with a `Query` of its own before the claim.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from benchmarks.contenders import created
from codepool.candidates import CandidatePrefetcher
from codepool.config import Settings, load_pools
from codepool.dynamodb import DynamoDBRepository, open_client
from codepool.services import issue_codes
from issuer.requests import parse_issue_body


async def _issue(body: str | None) -> dict[str, Any]:
    settings = Settings.from_env()
    pools = load_pools(settings.pools_file)
    async with AsyncExitStack() as stack:
        client = await open_client(settings, stack)
        repository = DynamoDBRepository(client, settings.table_name)
        result = await issue_codes(repository, CandidatePrefetcher(repository), pools, parse_issue_body(body))
    return result.codes[0].to_json()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return created(asyncio.run(_issue(event.get("body"))))
