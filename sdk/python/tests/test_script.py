"""The script helper packs a local script as a container job (no server needed)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import support

from omnisync import Client, SpecError, script_job
from omnisync.script import DETERMINISTIC_ENV


class ScriptJobTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="script-test-"))
        self.script = self.dir / "train.py"
        self.script.write_text("print('hi')\n")
        (self.dir / "data.csv").write_text("x\n1\n")

    def test_packs_script_data_and_args(self) -> None:
        job = script_job(self.script, image="img:1", data=[self.dir / "data.csv"], args=["--epochs", 3])
        self.assertEqual(job.command, ("python3", "/inputs/train.py", "--epochs", "3"))
        self.assertEqual(list(job.inputs), ["train.py", "data.csv"])
        self.assertEqual(job.env, tuple(f"{k}={v}" for k, v in DETERMINISTIC_ENV.items()))

    def test_env_overrides_the_deterministic_defaults(self) -> None:
        job = script_job(self.script, image="i", env={"PYTHONHASHSEED": "7", "X": "1"})
        self.assertIn("PYTHONHASHSEED=7", job.env)
        self.assertNotIn("PYTHONHASHSEED=0", job.env)
        self.assertEqual(script_job(self.script, image="i", deterministic=False).env, ())

    def test_spec_it_makes(self) -> None:
        job = script_job(self.script, image="pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", data={"blob.bin": b"\0" * 10})
        spec, data = Client("http://127.0.0.1:9").container_job(job.image, command=job.command, env=job.env, inputs=job.inputs, gpus=1)
        self.assertEqual(spec.verification, "redundant")
        self.assertEqual([i.name for i in spec.inputs], ["train.py", "blob.bin"])
        self.assertEqual(spec.inputs[0].size, len("print('hi')\n"))
        self.assertEqual(data["blob.bin"], b"\0" * 10)

    def test_refusals(self) -> None:
        with self.assertRaises(SpecError):
            script_job(self.dir / "missing.py", image="i")
        with self.assertRaises(SpecError):
            script_job(self.script, image="i", data={"train.py": b"x"})
        with self.assertRaises(SpecError):
            script_job(self.script, image="i", data=[self.dir / "data.csv", self.dir / "sub" / "data.csv"])
        bad = self.dir / "my script.py"
        bad.write_text("")
        with self.assertRaises(SpecError):
            script_job(bad, image="i")
        with self.assertRaises(SpecError):
            Client("http://127.0.0.1:9").container_job("i", inputs={".hidden": b"x"})


class ExampleTest(unittest.TestCase):
    def test_run_script_example_dry_run(self) -> None:
        p = subprocess.run(
            [sys.executable, str(support.SDK / "examples" / "run_script.py"), "--dry-run"],
            capture_output=True,
            timeout=60,
        )
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn(b'"verification": "redundant"', p.stdout)
        self.assertIn(b"spec hash sha256:", p.stdout)


if __name__ == "__main__":
    unittest.main()
