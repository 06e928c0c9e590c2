"""Dollars per million issued codes at DynamoDB on-demand prices, from the priced request units measured."""

from __future__ import annotations

from typing import Any, TypedDict


class Prices(TypedDict):
    region: str
    mode: str
    usd_per_million_wru: float
    usd_per_million_rru: float
    effective: str
    source: str
    excludes: str


PRICES: Prices = {
    "region": "us-east-1",
    "mode": "on-demand",
    "usd_per_million_wru": 0.625,
    "usd_per_million_rru": 0.125,
    "effective": "2024-11-01",
    "source": "https://aws.amazon.com/dynamodb/pricing/on-demand/ (price cut of 1 November 2024)",
    "excludes": "storage, backups, streams, data transfer, Lambda and API Gateway",
}


def usd_per_million(wru: float, rru: float) -> float:
    """Per code `wru` write and `rru` read units -> $ per million codes (units priced per million)."""
    return wru * PRICES["usd_per_million_wru"] + rru * PRICES["usd_per_million_rru"]


def cost_table(hot_path: dict[str, Any], refill: dict[str, Any], fill_sweep: dict[str, Any]) -> dict[str, Any]:
    claim_wru, claim_rru = hot_path["wru_per_code"], hot_path["rru_per_code"]
    refill_wru, refill_rru = refill["wru_per_code"], refill["rru_per_code"]
    by_fill: dict[str, Any] = {}
    for level, measured in fill_sweep["levels"].items():
        pool = measured["pool"]
        by_fill[level] = {
            "ours": usd_per_million(
                pool["wru_per_code"] + pool["refill_wru_per_code"], pool["rru_per_code"] + pool["refill_rru_per_code"]
            ),
            "on_demand": usd_per_million(measured["on_demand"]["wru_per_code"], 0.0),
        }
    return {
        "prices": PRICES,
        "ours": {
            "claim_wru_per_code": claim_wru,
            "claim_rru_per_code": claim_rru,
            "refill_wru_per_code": refill_wru,
            "refill_rru_per_code": refill_rru,
            "usd_per_million_codes": usd_per_million(claim_wru + refill_wru, claim_rru + refill_rru),
        },
        "on_demand_empty_keyspace_usd_per_million_codes": by_fill.get("0", {}).get("on_demand"),
        "by_fill": by_fill,
    }
