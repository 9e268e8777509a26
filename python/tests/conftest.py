"""Fixtures: a real strata-server process (STRATA_SERVER_BIN) with a config written for the test.

The server runs in its own process group (start_new_session) and the whole group is killed at
teardown, also when the test fails. Tests that need it skip when STRATA_SERVER_BIN is not set."""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scripted_server

SERVER_BIN = os.environ.get("STRATA_SERVER_BIN", "")
FINGERPRINT = 0x0123456789ABCDEF
BLOCK_TOKENS = 64

TENANTS = [
    {"name": "alpha", "secret": "alpha-secret", "key_secret": "alpha-keys"},
    # 1 MiB of staging per connection: PUT batches wrap around it.
    {"name": "beta", "secret": "beta-secret", "staging_bytes": "1MiB"},
    # Clients write this tenant's arena in place (no staging region; host copies verified).
    {"name": "gamma", "secret": "gamma-secret", "client_writes": "in_place"},
]


def _config(socket_path: str, data_dir: str) -> dict:
    return {
        "socket": socket_path,
        "data_dir": data_dir,
        "io_threads": 2,
        "blocking_threads": 1,
        "metrics_port": 0,
        "host": {"capacity": "64MiB", "prefault": False},
        "nvme": {"capacity": "128MiB", "segment_size": "16MiB"},
        "tenants": TENANTS,
    }


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the test process dies first (a ctest
    timeout kills pytest without teardown, and a new session escapes the group kill)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerProcess:
    def __init__(self, workdir: Path):
        # A socket path must fit sockaddr_un (108 bytes): keep it short, apart from the data.
        self.sockdir = tempfile.mkdtemp(prefix="strata-py-")
        self.socket_path = os.path.join(self.sockdir, "s.sock")
        base = os.environ.get("STRATA_TEST_TMPDIR")  # O_DIRECT needs a real filesystem
        if base:
            os.makedirs(base, exist_ok=True)
            self.data_dir = tempfile.mkdtemp(prefix="strata-py-data-", dir=base)
        else:
            self.data_dir = str(workdir / "data")
            os.makedirs(self.data_dir, exist_ok=True)
        self.config_path = workdir / "server.json"
        self.config_path.write_text(json.dumps(_config(self.socket_path, self.data_dir),
                                               indent=2))
        self.log_path = workdir / "server.log"
        self.proc = None
        self.starts = 0

    def start(self, wait_s: float = 30.0) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SERVER_BIN, "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self.starts += 1
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata-server exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            if os.path.exists(self.socket_path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.settimeout(1)
                    s.connect(self.socket_path)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("strata-server did not listen in time:\n" + self.log_tail())

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _signal_group(self, sig) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the whole group, as a crash."""
        if self.proc is not None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int:
        """SIGTERM (a clean flush and exit), SIGKILL to the group after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self._signal_group(signal.SIGKILL)  # anything it left in its group
            return self.proc.returncode if self.proc else 0
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        self.proc.wait(30)
        return self.proc.returncode

    def cleanup(self) -> None:
        shutil.rmtree(self.sockdir, ignore_errors=True)
        if os.environ.get("STRATA_TEST_TMPDIR"):
            shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture
def server(tmp_path):
    if not (SERVER_BIN and os.access(SERVER_BIN, os.X_OK)):
        pytest.skip("STRATA_SERVER_BIN (the strata-server binary) not set")
    srv = ServerProcess(tmp_path)
    try:
        srv.start()
        yield srv
    finally:
        srv.kill()
        srv.cleanup()
