"""Shared test support: puts the SDK on sys.path and runs the Go side (the gosign helper,
the omnisync binary, built once per run, and a devnet on free ports in a temporary home).

Every test module imports this first, so ``python3 -m unittest discover -s
sdk/python/tests`` works from the repository root as well as from ``sdk/python``.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

TESTS = Path(__file__).resolve().parent
SDK = TESTS.parent
REPO = SDK.parent.parent
if str(SDK) not in sys.path:
    sys.path.insert(0, str(SDK))


def have_go() -> bool:
    """Whether a Go toolchain is on PATH (the Go-side tests need one)."""
    return shutil.which("go") is not None


def run_gosign(request: Dict[str, Any]) -> Dict[str, Any]:
    """Run tests/gosign with request as its stdin and return its JSON answer."""
    p = subprocess.run(
        ["go", "run", "./sdk/python/tests/gosign"],
        cwd=REPO,
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=600,
    )
    if p.returncode != 0:
        raise RuntimeError(f"gosign failed ({p.returncode}):\n{p.stderr.decode(errors='replace')}")
    return json.loads(p.stdout)


_binary: Optional[Path] = None


def build_omnisync() -> Path:
    """The omnisync binary: $OMNISYNC_BIN, or built from this tree once per test run (into
    a temporary directory removed when the run ends) and shared by the test modules."""
    global _binary
    prebuilt = os.environ.get("OMNISYNC_BIN")
    if prebuilt:
        return Path(prebuilt)
    if _binary is not None:
        return _binary
    out_dir = temp_dir("omnisync-sdk-bin-")
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    binary = out_dir / "omnisync"
    p = subprocess.run(
        ["go", "build", "-o", str(binary), "./cmd/omnisync"], cwd=REPO, capture_output=True, timeout=900
    )
    if p.returncode != 0:
        raise RuntimeError(f"go build ./cmd/omnisync failed:\n{p.stderr.decode(errors='replace')}")
    _binary = binary
    return binary


def docker_answers() -> Tuple[bool, str]:
    """Whether a Docker engine answers ``docker info`` here, and if not, why not."""
    if shutil.which("docker") is None:
        return False, "no docker CLI on PATH"
    try:
        p = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"docker info: {e}"
    if p.returncode != 0:
        why = p.stderr.decode(errors="replace").strip().splitlines()
        return False, "docker info failed: " + (why[-1] if why else f"status {p.returncode}")
    return True, ""


class Devnet:
    """``omnisync devnet`` in a temporary home, every port picked free, stopped with Ctrl-C.

    ``docker`` is its --docker flag: "off" (the default) never touches this machine's
    Docker engine, so container jobs are accepted but run nowhere; "on" runs them there.
    """

    def __init__(self, binary: Path, home: Path, docker: str = "off") -> None:
        self.binary = binary
        self.home = home
        self.docker = docker
        self.proc: Optional[subprocess.Popen] = None
        self.rest_url = ""
        self._stdout = home.parent / "devnet.stdout"
        self._stderr = home.parent / "devnet.stderr"

    @property
    def consumer_key_file(self) -> Path:
        """The devnet's funded consumer wallet (10,000 OMNI at genesis)."""
        return self.home / "keys" / "consumer.json"

    def start(self, timeout: float = 90.0) -> None:
        """Start the devnet and return once its REST API answers."""
        args = [str(self.binary), "devnet", "--home", str(self.home)]
        for flag in ("--rest-addr", "--rpc-addr", "--p2p-addr"):
            args += [flag, "127.0.0.1:0"]
        args += ["--nodes-port", "0"]
        args += ["--docker", self.docker]
        with open(self._stdout, "wb") as out, open(self._stderr, "wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._stdout.read_text(errors="replace")
            m = re.search(r"REST API at (http://\S+)", text)
            if m and "ready in" in text:
                self.rest_url = m.group(1)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"devnet exited with {self.proc.returncode}:\n{self.logs()}")
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"devnet not ready after {timeout}s:\n{self.logs()}")
        with urllib.request.urlopen(self.rest_url + "/health", timeout=10) as r:
            if json.load(r).get("status") != "ok":
                raise RuntimeError("devnet health is not ok")

    def logs(self) -> str:
        """What the devnet printed, for failure messages."""
        out = self._stdout.read_text(errors="replace") if self._stdout.exists() else ""
        err = self._stderr.read_text(errors="replace") if self._stderr.exists() else ""
        return f"--- stdout\n{out}\n--- stderr\n{err[-4000:]}"

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """Interrupt the devnet as Ctrl-C would and return its exit status (killed if it
        has not stopped within timeout: then None)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def temp_dir(prefix: str) -> Path:
    """A new temporary directory (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
