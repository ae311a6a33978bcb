"""A container job end to end against a devnet whose nodes run containers on this
machine's Docker engine (``omnisync devnet --docker on``), driven only through the SDK.

The image is built here, as the devnet builds its demo image: a static Go program
(``CGO_ENABLED=0``) in an image ``FROM scratch``, so no registry is reached. It reads its
inputs under /inputs, writes a report and a copy of one input under /outputs, logs to
stdout and stderr, and exits with the status it is given. Three nodes run it (verification
``redundant``); the test follows its logs while it runs, waits for the chain to settle it
verified, downloads and unpacks the verified output, reads the logs again and finds the job
in the consumer's job list.

Skipped, with the reason, where ``docker info`` fails or there is no Go toolchain.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import unittest
from pathlib import Path
from typing import List, Optional

import support

from omnisync import Client, ContainerResult, Job

_devnet: Optional[support.Devnet] = None
_work: Optional[Path] = None
_image: Optional[str] = None
_image_id = ""

# The program the image runs: deterministic, so that the three replicas' output archives
# are byte-identical and two of them agree.
PROGRAM = r"""package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	code := 0
	if len(os.Args) > 1 {
		code, _ = strconv.Atoi(os.Args[1])
	}
	entries, err := os.ReadDir("/inputs")
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	var report strings.Builder
	fmt.Fprintf(&report, "greeting=%s\n", os.Getenv("GREETING"))
	fmt.Printf("greeting %s\n", os.Getenv("GREETING"))
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/inputs", e.Name()))
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		fmt.Fprintf(&report, "%s %d %x\n", e.Name(), len(data), sha256.Sum256(data))
		fmt.Printf("read /inputs/%s\n", e.Name())
		if e.Name() == "blob.bin" {
			if err := os.MkdirAll("/outputs/nested/dir", 0o755); err == nil {
				err = os.WriteFile("/outputs/nested/dir/blob.bin", data, 0o644)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "probe:", err)
				os.Exit(1)
			}
		}
	}
	if err := os.WriteFile("/outputs/report.txt", []byte(report.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "probe: exiting with %d\n", code)
	os.Exit(code)
}
"""

TEXT = "Idle GPUs anywhere, every result verified.\nÜber alles: ünïcödé.\n".encode()
BLOB = bytes(range(256)) * 3
GREETING = "héllo"
EXIT_CODE = 3


def _run(args: List[str], cwd: Path, env: Optional[dict] = None, timeout: float = 300) -> str:
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout.decode(errors='replace')}{p.stderr.decode(errors='replace')}")
    return p.stdout.decode().strip()


def build_image(directory: Path) -> None:
    """Compile PROGRAM statically and build it into an image FROM scratch, tagged by the
    program's hash (so a later run reuses Go's build cache and the engine's image)."""
    global _image, _image_id
    directory.mkdir(parents=True)
    (directory / "main.go").write_text(PROGRAM)
    (directory / "go.mod").write_text("module probe\n\ngo 1.22\n")
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOWORK": "off", "GOFLAGS": ""}
    _run(["go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", "probe", "."], directory, env)
    (directory / "Dockerfile").write_text('FROM scratch\nCOPY probe /probe\nENTRYPOINT ["/probe"]\n')
    tag = "omnisync-sdk-test/probe:" + hashlib.sha256(PROGRAM.encode()).hexdigest()[:12]
    _run(["docker", "build", "-q", "-t", tag, "."], directory)
    _image_id = _run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], directory)
    _image = tag


def setUpModule() -> None:
    global _devnet, _work
    if not support.have_go():
        raise unittest.SkipTest("needs the Go toolchain to build the job's image")
    ok, why = support.docker_answers()
    if not ok:
        raise unittest.SkipTest(f"needs a Docker engine: {why}")
    binary = support.build_omnisync()
    _work = support.temp_dir("omnisync-sdk-containers-")
    build_image(_work / "image")
    _devnet = support.Devnet(binary, _work / "home", docker="on")
    try:
        _devnet.start()
    except BaseException:
        _devnet.stop()
        raise


def tearDownModule() -> None:
    if _devnet is not None:
        code = _devnet.stop()
        if code != 0:
            raise AssertionError(f"the devnet did not stop cleanly on Ctrl-C (status {code}):\n{_devnet.logs()}")
    if _work is not None:
        shutil.rmtree(_work, ignore_errors=True)


class ContainerJobTest(unittest.TestCase):
    def test_container_job_end_to_end(self) -> None:
        assert _devnet is not None and _work is not None and _image is not None
        c = Client(_devnet.rest_url, _devnet.consumer_key_file, timeout=30)
        job = c.submit_container(
            _image,
            image_id=_image_id,
            command=["/probe", str(EXIT_CODE)],
            env={"GREETING": GREETING},
            inputs={"text.txt": TEXT, "blob.bin": BLOB},
            cpu_milli=500,
            memory_mib=64,
            timeout_seconds=120,
        )
        self.assertEqual((job.kind, job.verification), ("container", "redundant"))

        # Follow the logs while the job runs, as `omnisync job logs -f` does.
        followed: List[str] = []
        errors: List[BaseException] = []

        def follow() -> None:
            try:
                followed.extend(c.logs(job.id, follow=True, timeout=90))  # type: ignore[arg-type]
            except BaseException as e:  # reported by the test below
                errors.append(e)

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        updates: List[Job] = []
        job = c.wait(job.id, updates.append, timeout=90)
        self.assertTrue(job.succeeded, f"{job.status} {job.error} {job.verdict}\n{_devnet.logs()}")
        self.assertGreaterEqual(len(updates), 2)

        # Three replicas on three nodes; a digest shows for those that revealed it, and it
        # is the settled result; those that agreed were paid.
        self.assertEqual(len(job.replicas), 3)
        self.assertEqual(len({r.node for r in job.replicas}), 3)
        self.assertGreaterEqual(len(job.agreed), 2)
        self.assertTrue(all(r.result_digest == job.result_digest for r in job.replicas if r.revealed))
        self.assertTrue(all(r.paid > 0 for r in job.agreed), job.replicas)
        self.assertIsNotNone(job.payment)

        # The verified output: the exit code and the files, unpacked.
        out = _work / "out"
        r = c.result(job.id, download_to=out)
        assert isinstance(r, ContainerResult)
        self.assertTrue(r.verified)
        self.assertEqual(r.digest, job.result_digest)
        self.assertEqual(r.exit_code, EXIT_CODE)
        report = f"greeting={GREETING}\n" + "".join(
            f"{name} {len(data)} {hashlib.sha256(data).hexdigest()}\n" for name, data in (("blob.bin", BLOB), ("text.txt", TEXT))
        )
        self.assertEqual(r.as_dict(), {"nested/dir/blob.bin": BLOB, "report.txt": report.encode()})
        self.assertEqual((out / "exit_code").read_text(), f"{EXIT_CODE}\n")
        self.assertEqual((out / "outputs" / "report.txt").read_text(), report)
        self.assertEqual((out / "outputs" / "nested" / "dir" / "blob.bin").read_bytes(), BLOB)
        self.assertEqual(sorted(r.paths), sorted([out / "outputs" / "report.txt", out / "outputs" / "nested" / "dir" / "blob.bin"]))

        # The logs: stdout and stderr, of each node that ran it.
        want = [f"greeting {GREETING}", "read /inputs/blob.bin", "read /inputs/text.txt", f"probe: exiting with {EXIT_CODE}"]
        text = c.logs(job.id)
        assert isinstance(text, str)
        for line in want:
            self.assertIn(line + "\n", text)
        first = next(c.log_reads(job.id))
        self.assertTrue(first.final and first.eof, first)
        self.assertGreaterEqual(len(first.nodes), 2)
        self.assertTrue(set(first.nodes) <= {rep.node for rep in job.replicas})
        for node in first.nodes:
            log = c.logs(job.id, node=node, text=False)
            assert isinstance(log, bytes)
            for line in want:
                self.assertIn((line + "\n").encode(), log, node)
        self.assertEqual(c.logs(job.id, since=len(text.encode()) - 2), text[-2:])
        t.join(30)
        self.assertFalse(t.is_alive(), "following the logs ended with the job")
        self.assertEqual(errors, [])
        # Following read a whole log too (perhaps another replica's: the lines are the same,
        # stdout and stderr perhaps interleaved otherwise).
        self.assertEqual(sorted("".join(followed).splitlines()), sorted(text.splitlines()))

        # The consumer's job list has it, newest first.
        listed = c.list(limit=5)
        self.assertEqual(listed[0].id, job.id)
        self.assertEqual((listed[0].kind, listed[0].status, listed[0].verified), ("container", "settled", True))
        self.assertIn(job.id, [j.id for j in c.iter_jobs(status="settled")])


if __name__ == "__main__":
    unittest.main()
