from __future__ import annotations

from pathlib import Path

import pytest

from codepool.config import DEFAULT_POOL, Settings, load_pools, parse_pools
from codepool.errors import ConfigError


def test_without_a_file_there_is_the_default_pool() -> None:
    pools = load_pools(None)
    assert list(pools) == ["default"]
    assert pools["default"] is DEFAULT_POOL
    assert DEFAULT_POOL.format.length == 8


def test_a_pools_file_defines_the_pools(tmp_path: Path) -> None:
    file = tmp_path / "pools.toml"
    file.write_text(
        """
        [pools.vouchers]
        alphabet = "unambiguous"
        length = 10
        prefix = "V-"
        pattern = "#####-#####"
        target = 500
        low_watermark = 100
        shards = 2

        [pools.tickets]
        alphabet = "numeric"
        length = 6
        """
    )
    pools = load_pools(file)
    assert set(pools) == {"vouchers", "tickets"}
    assert pools["vouchers"].format.prefix == "V-"
    assert pools["vouchers"].shards == 2
    assert pools["tickets"].target == 10_000
    assert pools["tickets"].low_watermark == 2_000


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"pools": {"x": {"alphabet": "numeric"}}}, "required"),
        ({"pools": {"x": {"alphabet": "numeric", "length": "8"}}}, "'length' must be int"),
        ({"pools": {"x": {"alphabet": "numeric", "length": True}}}, "'length' must be int"),
        ({"pools": {"x": {"alphabet": "numeric", "length": 8, "colour": "red"}}}, "unknown keys"),
        ({"pools": {"Bad Name": {"alphabet": "numeric", "length": 8}}}, "pool name"),
        ({"pools": {"x": {"alphabet": "numeric", "length": 3, "target": 600}}}, "cannot keep"),
        ({"pools": {"x": {"alphabet": "numeric", "length": 8, "target": 10, "low_watermark": 11}}}, "low_watermark"),
        ({"pools": {"x": {"alphabet": "numeric", "length": 8, "shards": 0}}}, "shards"),
        ({"pools": {"x": {"alphabet": "numeric", "length": 8, "blocklist": "abc"}}}, "blocklist"),
        ({"pool": {}}, "unknown top-level"),
    ],
)
def test_bad_pool_definitions_name_the_pool_and_the_field(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_pools(document)


def test_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_pools(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[pools.x\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pools(broken)


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {"TABLE_NAME": "T", "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:1", "DYNAMODB_READ_TIMEOUT": "0.5"}
    )
    assert (settings.table_name, settings.endpoint_url, settings.read_timeout) == ("T", "http://localhost:1", 0.5)
    assert Settings.from_env({}).table_name == "UniqueCodes"
    with pytest.raises(ConfigError, match="DYNAMODB_MAX_ATTEMPTS"):
        Settings.from_env({"DYNAMODB_MAX_ATTEMPTS": "many"})
