"""Run pytest in a forked, already-warmed interpreter: mutation testing's test command.

Why: tools/mutate.py runs a module's tests once per mutant, hundreds of times. A fresh
`python -m pytest` spends most of its seconds importing torch, pyarrow, optuna, Ray and pytest
before the first test runs; that import, not the tests, made `make mutate` take hours on
2 cores. The server here imports those libraries once, then forks one child per test run:
the child starts with them loaded and imports only te_sweep (and the tests) from disk, so it
sees the mutant cosmic-ray has just written. The server never imports te_sweep itself, and
nothing writes bytecode, so no child can see a stale module.

    python tools/warm_pytest.py serve SOCKET          # started and stopped by mutate.py
    python tools/warm_pytest.py run SOCKET PYTEST-ARGS...

`run` is the test command cosmic-ray starts per mutant; it imports only the standard
library, passes its working directory and arguments to the server, and exits with pytest's
exit code. If the client is killed (cosmic-ray's timeout), the child notices the closed
connection and kills itself and anything it started. With no server listening, `run` falls
back to an ordinary `python -m pytest`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "te_sweep"
# Imported by the tests besides te_sweep's own imports (found by importing te_sweep).
TEST_LIBRARIES = (
    "pytest",
    "hypothesis",
    "hypothesis.strategies",
    "numpy.testing",
    "_hypothesis_pytestplugin",
)
EXIT_CODE = struct.Struct("!i")
MARKER = "warm_pytest modules: "
DISCOVER = f"""
import importlib, json, pkgutil, sys
import {PACKAGE}
for info in pkgutil.iter_modules({PACKAGE}.__path__):
    if info.name == "__main__":
        continue
    try:
        importlib.import_module("{PACKAGE}." + info.name)
    except Exception:
        pass
print("{MARKER}" + json.dumps(list(sys.modules)))
"""


def libraries_to_preload() -> list[str]:
    """Every module te_sweep's modules import, except te_sweep's own: found in a throwaway
    interpreter, so that the server itself never imports te_sweep."""
    found = subprocess.run(
        [sys.executable, "-c", DISCOVER], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    own = (PACKAGE, "tests", "__main__")
    listed = next(line for line in found.splitlines() if line.startswith(MARKER))
    return [
        name for name in json.loads(listed[len(MARKER) :]) if name.split(".")[0] not in own
    ] + list(TEST_LIBRARIES)


def preload(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):  # a library that fails here fails in its test
            importlib.import_module(name)


def receive_request(connection: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("client went away before its request")
        data += chunk
    return json.loads(data)


def die_with_client(connection: socket.socket) -> None:
    """In the child: kill the child's process group once the client hangs up (timeout)."""

    def watch() -> None:
        connection.recv(1)  # the client sends nothing more: this returns only at its end
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def run_child(connection: socket.socket, request: dict) -> None:
    """The forked child: pytest with the request's arguments, its exit code to the client."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the tests' own subprocesses are waited on
    code = 1
    try:
        os.chdir(request["cwd"])
        sys.path.insert(0, request["cwd"])
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        die_with_client(connection)
        import pytest

        code = int(pytest.main(request["args"]))
    finally:
        try:
            connection.sendall(EXIT_CODE.pack(code))
        finally:
            os._exit(0)


def serve(path: str) -> None:
    sys.dont_write_bytecode = True
    preload(libraries_to_preload())
    # Everything loaded so far lives as long as the server: out of the collector's sight, so
    # a child's gc.collect() (pytest runs two at its end) does not walk torch's heap (0.9 s).
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    print(f"warm_pytest: serving on {path}", flush=True)
    while True:
        connection, _ = server.accept()
        try:
            request = receive_request(connection)
        except (ConnectionError, ValueError):
            connection.close()
            continue
        if os.fork() == 0:
            server.close()
            run_child(connection, request)
        connection.close()


def run(path: str, args: list[str]) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
    except OSError:
        return subprocess.call([sys.executable, "-m", "pytest", *args])
    client.sendall(json.dumps({"cwd": os.getcwd(), "args": args}).encode() + b"\n")
    data = b""
    while len(data) < EXIT_CODE.size:
        chunk = client.recv(EXIT_CODE.size - len(data))
        if not chunk:
            return 1  # the child died without a word: the mutant crashed the interpreter
        data += chunk
    return EXIT_CODE.unpack(data)[0]


def main() -> None:
    command, path, *args = sys.argv[1:]
    if command == "serve":
        serve(path)
    elif command == "run":
        sys.exit(run(path, args))
    else:
        sys.exit(f"warm_pytest: unknown command {command!r}; use serve or run")


if __name__ == "__main__":
    main()
