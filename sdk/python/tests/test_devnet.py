"""End to end against a real devnet: the omnisync binary built from this tree, started on
free ports in a temporary home, driven only through the SDK, stopped with Ctrl-C.

Container jobs stop at the router accepting the job (HTTP 2xx): this devnet runs with
``--docker off``, so no node runs them and the job is refunded. test_containers.py runs
one end to end where a Docker engine answers.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import List, Optional

import support

from omnisync import (
    MLP,
    BadRequest,
    Client,
    Float32Matrix,
    Forbidden,
    InsufficientFunds,
    Input,
    Int8Matrix,
    Int32Matrix,
    Job,
    SigningKey,
    TensorResult,
    Unauthorized,
    _gojson,
    matmul,
    sign_create_job,
    tensor_spec,
)
from omnisync import job_id as derive_job_id

_devnet: Optional[support.Devnet] = None
_work: Optional[Path] = None


def setUpModule() -> None:
    global _devnet, _work
    if not support.have_go() and not os.environ.get("OMNISYNC_BIN"):
        raise unittest.SkipTest("needs the Go toolchain to build the omnisync binary")
    binary = support.build_omnisync()
    _work = support.temp_dir("omnisync-sdk-devnet-")
    _devnet = support.Devnet(binary, _work / "home", docker="off")
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


def _matrix(rng: random.Random, rows: int, cols: int) -> Int8Matrix:
    return Int8Matrix.from_rows([[rng.randint(-128, 127) for _ in range(cols)] for _ in range(rows)])


class DevnetTest(unittest.TestCase):
    """One consumer's view of the network. Tests run in name order and share its account."""

    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        assert _devnet is not None
        cls.client = Client(_devnet.rest_url, _devnet.consumer_key_file, timeout=30)
        cls.tmp = Path(tempfile.mkdtemp(prefix="omnisync-sdk-out-"))
        cls.rng = random.Random(7)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _run_matmul(self, client: Client, rows: int, inner: int, cols: int) -> None:
        a, b = _matrix(self.rng, rows, inner), _matrix(self.rng, inner, cols)
        a_path = a.save_npy(self.tmp / f"A-{rows}.npy")  # .npy files in, as a user has them
        job = client.submit_tensor({"a": a_path, "b": b.to_npy()})
        self.assertTrue(job.id.startswith("job-"))
        updates: List[Job] = []
        job = client.wait(job.id, updates.append, timeout=90)
        self.assertTrue(job.succeeded, f"{job.status} {job.error} {job.verdict}")
        self.assertGreaterEqual(len(updates), 2, "the progress callback saw the job move")
        self.assertEqual(updates[-1].status, "settled")
        self.assertIn("settled", [e.stage for e in job.events])
        self.assertIsNotNone(job.payment)

        out = self.tmp / job.id
        r = client.result(job.id, download_to=out)
        assert isinstance(r, TensorResult)
        self.assertTrue(r.verified)
        self.assertEqual(r.digest, job.result_digest)
        self.assertEqual(r.path, out / f"{job.id}.npy")
        self.assertEqual(Int32Matrix.from_npy(r.path.read_bytes()), matmul(a, b))
        self.assertEqual(r.matrix.shape, (rows, cols))

    def test_1_tensor_job_end_to_end(self) -> None:
        self._run_matmul(self.client, 48, 32, 24)

    def test_2_inputs_streamed_with_put(self) -> None:
        streaming = Client(self.client.url, key=self.client.key, inline_limit=0)
        self._run_matmul(streaming, 20, 10, 5)

    def _settle(self, job: Job) -> TensorResult:
        job = self.client.wait(job.id, timeout=90)
        self.assertTrue(job.succeeded, f"{job.status} {job.error} {job.verdict}")
        r = self.client.result(job.id, download_to=self.tmp / job.id)
        assert isinstance(r, TensorResult)
        self.assertTrue(r.verified)
        return r

    def test_2a_async_jobs_pipelined(self) -> None:
        # Answered once the mempool admits each escrow, so one key's jobs share blocks; the
        # last one's input is streamed, once its escrow has committed.
        c = Client(self.client.url, key=self.client.key, inline_limit=1 << 20)
        seq = c.account().seq
        a, b = _matrix(self.rng, 8, 6), _matrix(self.rng, 6, 4)
        jobs = [c.submit_tensor({"a": a, "b": b}, async_=True) for _ in range(2)]
        c.inline_limit = 0
        jobs.append(c.submit_tensor({"a": a, "b": b}, async_=True))
        self.assertEqual([j.id for j in jobs], [derive_job_id(c.address, s) for s in range(seq, seq + 3)])
        for j in jobs:
            self.assertEqual(self._settle(j).matrix, matmul(a, b))

    def test_2b_float32_product(self) -> None:
        rng = self.rng
        a = Float32Matrix.from_rows([[rng.uniform(-1, 1) for _ in range(24)] for _ in range(16)])
        b = Float32Matrix.from_rows([[rng.uniform(-1, 1) for _ in range(8)] for _ in range(24)])
        r = self._settle(self.client.submit_tensor({"a": a, "b": b.to_npy()}, kernel="matmul-fp32"))
        self.assertEqual(r.kernel, "matmul-fp32")
        self.assertEqual(Float32Matrix.from_npy(r.path.read_bytes()), r.matrix)  # type: ignore[union-attr]
        for i in range(a.rows):  # within float32 rounding of the product, whatever order the node summed in
            for j in range(b.cols):
                terms = [a[i, k] * b[k, j] for k in range(a.cols)]
                bound = a.cols * 2.0**-23 * sum(map(abs, terms)) + 1e-30
                self.assertLessEqual(abs(r.matrix[i, j] - sum(terms)), bound, (i, j))

    def test_2c_mlp_batch(self) -> None:
        rng = self.rng
        dims, shifts = [12, 8, 5], [6, 4]
        model = MLP.from_layers(
            [
                ([[rng.randint(-128, 127) for _ in range(dims[i])] for _ in range(dims[i + 1])], [rng.randint(-500, 500) for _ in range(dims[i + 1])], shifts[i])
                for i in range(len(shifts))
            ]
        )
        x = _matrix(rng, 6, 12)
        model_file = model.save_npz(self.tmp / "model.npz")  # as the CLI's --model takes it
        r = self._settle(self.client.submit_mlp(model_file, x.save_npy(self.tmp / "X.npy")))
        self.assertEqual((r.kernel, r.matrix), ("mlp-int8", model.forward(x)))
        self.assertEqual(r.trace, model.trace(x))
        self.assertEqual(Int8Matrix.from_npy(r.path.read_bytes()), model.forward(x))  # type: ignore[union-attr]

    def test_3_list_and_events(self) -> None:
        c = self.client
        jobs = c.list(limit=5)
        self.assertFalse(jobs.from_chain, "a router keeps a job list")
        self.assertGreaterEqual(len(jobs), 2)
        self.assertTrue(all(j.consumer == c.address for j in jobs))
        self.assertTrue(all(j.kind == "tensor" and not j.events for j in jobs))
        settled = c.list(limit=1, status="settled")
        self.assertEqual(len(settled), 1)
        self.assertEqual(settled.next, settled[0].id, "another job follows")
        # Pages, one job each, follow next to the end.
        first = c.list(limit=1)
        self.assertEqual(first.next, first[0].id)
        second = c.list(limit=1, after=first.next)
        self.assertEqual(second[0].id, jobs[1].id)
        every = [j.id for j in c.iter_jobs(page_size=1)]
        self.assertEqual(every, [j.id for j in c.list(limit=500)])
        self.assertEqual(every[: len(jobs)], [j.id for j in jobs])
        # The chain, read by the account's transactions, knows the same jobs.
        from_chain = c.list(limit=50, chain=True)
        self.assertTrue(from_chain.from_chain)
        self.assertEqual(sorted(j.id for j in from_chain), sorted(every))
        with self.assertRaises(BadRequest) as cm:
            c.list(after="job-0000000000000000")
        self.assertEqual(cm.exception.field, "after")

        stages = [e.stage for e in c.events(jobs[0].id)]
        self.assertEqual(stages[0], "escrowed")
        self.assertEqual(list(c.events(jobs[0].id, follow=True))[-1].stage, "settled")

    def test_4_cancel_a_job_waiting_for_inputs(self) -> None:
        c = self.client
        a = _matrix(self.rng, 4, 4).to_omt()
        spec = tensor_spec([Input.of("a", a), Input.of("b", a)])
        tx = sign_create_job(c.key, c.chain_id(), c.account().seq, spec)  # type: ignore[arg-type]
        body = _gojson.dumps({"spec": spec.to_dict(), "tx": tx})  # no inputs: the job waits for uploads
        job = Job.from_dict(c._t.call("POST", "/v1/jobs", body))
        self.assertEqual(c.get(job.id).status, "awaiting_inputs")
        before = c.account().balance
        receipt = c.cancel(job.id)
        self.assertEqual(len(receipt.hash), 64)
        self.assertGreater(receipt.height, 0)
        done = c.wait(job.id, timeout=30)
        self.assertEqual(done.status, "cancelled")
        self.assertEqual(c.account().balance, before + spec.budget, "the escrow came back in full")
        with self.assertRaises(BadRequest) as cm:
            c.cancel(job.id)
        self.assertEqual(cm.exception.field, "tx")

    def test_5_trust_boundaries(self) -> None:
        c = self.client
        job_id = c.list(limit=1, status="settled")[0].id
        stranger = Client(c.url, key=SigningKey.generate())
        with self.assertRaises(Forbidden):
            stranger.result(job_id)  # only the consumer may read its output
        with self.assertRaises(Forbidden):
            stranger.logs(job_id)  # and its logs
        self.assertEqual(list(stranger.list()), [])  # a key lists its own jobs only
        with self.assertRaises(Unauthorized):
            c._t.call("GET", "/v1/jobs")  # unsigned
        with self.assertRaises(InsufficientFunds):
            stranger.submit_tensor({"a": [[1]], "b": [[2]]})  # nothing is escrowed
        # A transaction committing to one spec cannot carry another.
        a = _matrix(self.rng, 2, 2).to_omt()
        signed = tensor_spec([Input.of("a", a), Input.of("b", a)])
        sent = tensor_spec([Input.of("a", a), Input.of("b", a)], budget=signed.budget + 1)
        tx = sign_create_job(c.key, c.chain_id(), c.account().seq, signed)  # type: ignore[arg-type]
        body = _gojson.dumps({"spec": sent.to_dict(), "input_data": {"a": a, "b": a}, "tx": tx})
        with self.assertRaises(BadRequest) as cm:
            c._t.call("POST", "/v1/jobs", body)
        self.assertEqual(cm.exception.field, "tx")

    def test_6_tensor_jobs_log_nothing(self) -> None:
        job = self.client.list(limit=1, status="settled")[0]
        self.assertEqual(self.client.logs(job.id), "")
        self.assertEqual(list(self.client.logs(job.id, follow=True, timeout=10)), [])
        read = next(self.client.log_reads(job.id))
        self.assertTrue(read.final)
        self.assertEqual((read.data, read.nodes), (b"", []))

    def test_7_container_job_is_accepted(self) -> None:
        c = self.client
        script = self.tmp / "hello.py"
        script.write_text("open('/outputs/hello.txt', 'w').write('hi')\n")
        spec, _ = c.container_job(
            "python:3.12-slim", command=["python3", "/inputs/hello.py"], inputs=[script], cpu_milli=500, memory_mib=256
        )
        self.assertEqual(spec.verification, "redundant")
        try:
            job = c.submit_container(
                "python:3.12-slim", command=["python3", "/inputs/hello.py"], inputs=[script], cpu_milli=500, memory_mib=256
            )
        except BadRequest as e:
            if e.field.startswith("spec.workload"):
                self.skipTest(f"this router does not take container jobs yet: {e}")
            raise
        self.assertTrue(job.id.startswith("job-"))
        self.assertEqual(c.get(job.id).kind, "container")
        self.assertEqual(c.list(limit=1)[0].id, job.id)
        try:
            c.cancel(job.id)  # no node here runs containers: take the budget back
        except BadRequest:
            pass  # the router refunded it first
        self.assertEqual(c.wait(job.id, timeout=30).status, "cancelled")

    def test_8_matmul_example_runs(self) -> None:
        assert _devnet is not None
        p = subprocess.run(
            [sys.executable, str(support.SDK / "examples" / "matmul.py"), "--api", _devnet.rest_url,
             "--wallet", str(_devnet.consumer_key_file), "--size", "16", "--out", str(self.tmp)],
            capture_output=True,
            timeout=120,
        )
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertIn(b"matches the local product: True", p.stdout)

    def test_9_jobs_example_runs(self) -> None:
        assert _devnet is not None
        base = [sys.executable, str(support.SDK / "examples" / "jobs.py"), "--api", _devnet.rest_url, "--wallet", str(_devnet.consumer_key_file)]
        every = [j.id for j in self.client.iter_jobs()]
        for extra, want_ids in ((["--limit", "2"], every[:2]), (["--all", "--limit", "1"], every), (["--chain", "--limit", "500"], every)):
            with self.subTest(args=extra):
                p = subprocess.run(base + extra, capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
                self.assertEqual([line.split()[0] for line in p.stdout.decode().splitlines()], want_ids)
        p = subprocess.run(base + ["--logs", every[-1], "-f"], capture_output=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, b""), p.stderr.decode())  # a tensor job logs nothing


if __name__ == "__main__":
    unittest.main()
