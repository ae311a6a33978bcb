"""The client against a scripted fake server: error mapping, event streams and their
fallback to polling, output checks. The real server is exercised in test_devnet."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import support  # noqa: F401  (puts the SDK on sys.path)
from test_archive import tar_of

from omnisync import (
    ArchiveError,
    BadRequest,
    Client,
    Conflict,
    ContainerResult,
    DigestMismatch,
    EncodingError,
    Float32Matrix,
    Forbidden,
    InsufficientFunds,
    Int8Matrix,
    Int32Matrix,
    Job,
    JobList,
    JobLogs,
    MLP,
    NotFound,
    NotSupportedByServer,
    OmniSyncError,
    ServerError,
    SigningKey,
    SpecError,
    TensorResult,
    TransportError,
    Unauthorized,
    Unavailable,
    UnverifiedResult,
    WaitTimeout,
    job_id,
)
from omnisync.keys import verify
from omnisync.signing import job_list_auth_message, output_auth_message

Reply = Tuple[int, Dict[str, str], bytes]
Route = Callable[["Handler"], Optional[Reply]]


def js(status: int, v: Any, **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(v).encode()


def job(status: str, events: int = 0, **kw: Any) -> Dict[str, Any]:
    evs = [{"time": "2026-11-30T07:08:17.807689994Z", "stage": f"s{i}", "message": f"m{i}"} for i in range(events)]
    return {"id": "job-1", "consumer": "c", "status": status, "verified": status == "settled", "attempts": 0, "events": evs, **kw}


def parse_submission(h: "Handler") -> Dict[str, Any]:
    """A POST /v1/jobs body as the JSON form's dict (input_data in base64), whether it came
    as JSON or as multipart/form-data, checking the multipart rules on the way."""
    ctype = h.headers.get("Content-Type", "")
    if not ctype.startswith("multipart/form-data; boundary="):
        return json.loads(h.body)
    delim = b"--" + ctype.split("boundary=", 1)[1].encode()
    chunks = h.body.split(delim)
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n", chunks[-1]
    body: Dict[str, Any] = {}
    data: Dict[str, str] = {}
    for i, c in enumerate(chunks[1:-1]):
        assert c.startswith(b"\r\n") and c.endswith(b"\r\n")
        head, _, payload = c[2:-2].partition(b"\r\n\r\n")
        m = re.search(rb'name="([^"]*)"', head)
        assert m is not None, head
        name = m.group(1).decode()
        if i == 0:
            assert name == "request" and b"Content-Type: application/json" in head, head
            body = json.loads(payload)
            assert "input_data" not in body
        else:
            assert name.startswith("input:") and name[6:] not in data, name
            data[name[6:]] = base64.b64encode(payload).decode()
    if data:
        body["input_data"] = data
    return body


class Handler(BaseHTTPRequestHandler):
    server: "FakeServer"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _serve(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        self.server.requests.append((self.command, self.path, dict(self.headers), self.body))
        # A route is keyed by method and path, with or without the query.
        routes = self.server.routes
        route = routes.get(f"{self.command} {self.path}") or routes.get(f"{self.command} {self.path.split('?')[0]}")
        if route is None:
            status, headers, body = js(404, {"error": f"{self.command} {self.path}: not found", "code": "not_found"})
        else:
            reply = route(self)
            if reply is None:
                return  # the route wrote its own response (an event stream)
            status, headers, body = reply
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: Dict[str, Route] = {}
        self.requests: List[Tuple[str, str, Dict[str, str], bytes]] = []
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def sse(events: List[Tuple[str, Any]], end: bool = True) -> Route:
    """A route streaming events (with a keep-alive comment first); end=False drops the
    connection mid-stream instead of ending cleanly."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b": keep-alive\n\n")
        for name, data in events:
            payload = data if isinstance(data, str) else json.dumps(data)
            h.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
            h.wfile.flush()
        if not end:
            h.wfile.write(b"event: job\ndata: {\"trunc")
        h.close_connection = True

    return route


class ClientTest(unittest.TestCase):
    def setUp(self) -> None:
        self.srv = FakeServer()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.key = SigningKey(bytes(32))
        self.c = Client(self.srv.url, key=self.key, chain_id="test")

    def test_base_url_forms(self) -> None:
        for url in (self.srv.url, self.srv.url + "/", self.srv.url[: -len("/v1")]):
            self.assertEqual(Client(url).url, self.srv.url[: -len("/v1")])
        with self.assertRaises(ValueError):
            Client("localhost:7070")

    def test_errors_map_by_status(self) -> None:
        cases = [
            (js(400, {"error": "spec.budget: must be positive", "field": "spec.budget", "code": "bad_request"}), BadRequest),
            (js(401, {"error": "expired", "code": "unauthorized"}), Unauthorized),
            (js(402, {"error": "poor", "code": "insufficient_funds"}), InsufficientFunds),
            (js(403, {"error": "not yours", "code": "forbidden"}), Forbidden),
            (js(404, {"error": "not found: job job-1", "code": "not_found"}), NotFound),
            (js(409, {"error": "seq", "code": "conflict"}), Conflict),
            (js(413, {"error": "too big", "code": "bad_request"}), BadRequest),
            (js(500, {"error": "boom", "code": "internal"}), ServerError),
            (js(503, {"error": "busy", "code": "unavailable"}), Unavailable),
            ((502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"), Unavailable),
            (js(405, {"error": "GET /v1/jobs/job-1: method not allowed", "code": "bad_request"}), NotSupportedByServer),
            ((404, {"Content-Type": "text/plain"}, b"404 page not found"), NotSupportedByServer),
        ]
        for reply, cls in cases:
            with self.subTest(cls=cls.__name__, status=reply[0]):
                self.srv.routes["GET /v1/jobs/job-1"] = lambda h, r=reply: r
                with self.assertRaises(cls) as cm:
                    self.c.get("job-1")
                self.assertEqual(cm.exception.status, reply[0])
                if cls is NotFound:
                    self.assertNotIsInstance(cm.exception, NotSupportedByServer)
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(400, {"error": "spec.budget: x", "field": "spec.budget"})
        with self.assertRaises(BadRequest) as cm:
            self.c.get("job-1")
        self.assertEqual(cm.exception.field, "spec.budget")

    def test_missing_routes_are_not_supported(self) -> None:
        with self.assertRaises(NotSupportedByServer):
            self.c.logs("job-1")  # the fake's own router answers the unrouted 404
        self.srv.routes["GET /v1/jobs/job-1/logs"] = lambda h: js(404, {"error": "not found: job job-1", "code": "not_found"})
        with self.assertRaises(NotFound):
            self.c.logs("job-1")  # a route that exists, for a job that does not
    def test_unreachable(self) -> None:
        port = self.srv.server_address[1]
        self.srv.shutdown()
        self.srv.server_close()
        with self.assertRaises(TransportError):
            Client(f"http://127.0.0.1:{port}", timeout=2).health()

    def test_wait_follows_the_stream(self) -> None:
        self.srv.routes["GET /v1/jobs/job-1/events"] = sse(
            [("job", job("queued", 1)), ("job", job("queued", 1)), ("job", job("running", 2)), ("job", job("settled", 3))]
        )
        seen: List[str] = []
        final = self.c.wait("job-1", lambda j: seen.append(j.status))
        self.assertEqual(seen, ["queued", "running", "settled"])  # each distinct state once
        self.assertTrue(final.succeeded)
        self.assertEqual([e.stage for e in final.events], ["s0", "s1", "s2"])
        self.assertEqual(final.events[0].time.microsecond, 807689)
        self.assertFalse(any(p == "/v1/jobs/job-1" for _, p, _, _ in self.srv.requests))

    def test_wait_polls_once_the_stream_breaks(self) -> None:
        self.srv.routes["GET /v1/jobs/job-1/events"] = sse([("job", job("queued", 1))], end=False)
        states = iter([job("queued", 1), job("running", 2), job("failed", 3, error="node vanished")])
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(200, next(states))
        seen: List[str] = []
        final = self.c.wait("job-1", lambda j: seen.append(j.status), poll_interval=0.01)
        self.assertEqual(seen, ["queued", "running", "failed"])
        self.assertEqual(final.error, "node vanished")
        with self.assertRaises(OmniSyncError):
            self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(200, job("failed"))
            self.c.wait("job-1", poll_interval=0.01, check=True)

    def test_wait_rides_out_a_busy_server_and_times_out(self) -> None:
        self.srv.routes["GET /v1/jobs/job-1/events"] = lambda h: js(503, {"error": "busy"})
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(503, {"error": "busy"})
        t = time.monotonic()
        with self.assertRaises(WaitTimeout):
            self.c.wait("job-1", timeout=0.3, poll_interval=0.05)
        self.assertLess(time.monotonic() - t, 2)
        self.srv.routes["GET /v1/jobs/job-1/events"] = lambda h: js(404, {"error": "not found: job job-1"})
        with self.assertRaises(NotFound):  # not transient: raised at once
            self.c.wait("job-1", timeout=5)

    def test_events(self) -> None:
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(200, job("running", 2))
        self.assertEqual([e.stage for e in self.c.events("job-1")], ["s0", "s1"])
        self.srv.routes["GET /v1/jobs/job-1/events"] = sse([("job", job("running", 2)), ("job", job("settled", 4))])
        self.assertEqual([e.stage for e in self.c.events("job-1", follow=True)], ["s0", "s1", "s2", "s3"])

    def _serve_output(
        self, data: bytes, digest: Optional[str] = None, verified: str = "true", committed: Optional[str] = None, kind: str = ""
    ) -> None:
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()

        def output(h: Handler) -> Reply:
            return 200, {"Omni-Digest": digest, "Omni-Verified": verified, "Omni-Job-Status": "settled"}, data

        extra = {"kind": kind} if kind else {}
        self.srv.routes["GET /v1/jobs/job-1/output"] = output
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(200, job("settled", result_digest=committed or digest, **extra))

    def test_result_signs_checks_and_decodes(self) -> None:
        m = Int32Matrix.from_rows([[1, -2], [3, 4]])
        self._serve_output(m.to_omt())
        r = self.c.result("job-1")
        self.assertEqual(r.matrix, m)
        auth = next(hd for meth, p, hd, _ in self.srv.requests if p.endswith("/output"))["Authorization"]
        self.assertRegex(auth, r'^OmniSig address="[1-9A-HJ-NP-Za-km-z]+", expires="\d+", signature="[A-Za-z0-9+/=]+"$')
        expires = int(auth.split('expires="')[1].split('"')[0])
        sig = base64.b64decode(auth.split('signature="')[1].rstrip('"'))
        self.assertTrue(verify(self.key.address, output_auth_message("job-1", expires), sig))
        self.assertLessEqual(expires - time.time(), 61)

    def test_result_refuses_bad_bytes(self) -> None:
        m = Int32Matrix.from_rows([[1]]).to_omt()
        self._serve_output(m, digest="sha256:" + "0" * 64)
        with self.assertRaises(DigestMismatch):
            self.c.result("job-1")
        self._serve_output(m, committed="sha256:" + "1" * 64)
        with self.assertRaises(DigestMismatch):
            self.c.result("job-1")
        self._serve_output(m, verified="false")
        with self.assertRaises(UnverifiedResult):
            self.c.result("job-1")
        self.assertFalse(self.c.result("job-1", allow_unverified=True).verified)
        self._serve_output(m, verified="")
        with self.assertRaises(OmniSyncError):
            self.c.output("job-1")

    def test_result_takes_the_kind_the_server_reports(self) -> None:
        archive = tar_of([("exit_code", b"3\n", None), ("outputs/out.txt", b"hi", None)])
        omt = Int32Matrix.from_rows([[7]]).to_omt()
        for data, kind, want in ((archive, "container", ContainerResult), (archive, "", ContainerResult), (omt, "tensor", TensorResult), (omt, "", TensorResult)):
            with self.subTest(kind=kind, want=want.__name__):
                self._serve_output(data, kind=kind)
                self.assertIsInstance(self.c.result("job-1"), want)
        r = self.c.result("job-1", kind="tensor")  # the caller's kind wins
        self.assertEqual(r.matrix.tolist(), [[7]])
        self._serve_output(omt, kind="container")  # the server's kind wins over the content
        with self.assertRaises(ArchiveError):
            self.c.result("job-1")
        self._serve_output(archive, kind="container")
        r = self.c.result("job-1")
        self.assertEqual((r.exit_code, r.read("out.txt")), (3, b"hi"))

    def test_result_decodes_each_kernel(self) -> None:
        f = Float32Matrix.from_rows([[1.5, -2.0]])
        self._serve_output(f.to_omt(), kind="tensor")
        with tempfile.TemporaryDirectory() as d:
            r = self.c.result("job-1", download_to=d)
            assert isinstance(r, TensorResult)
            self.assertEqual((r.kernel, r.matrix), ("matmul-fp32", f))
            self.assertEqual(Float32Matrix.from_npy(r.path.read_bytes()), f)  # type: ignore[union-attr]

        model = MLP.from_layers([([[1, 2, 3], [4, 5, -6]], [10, -20], 3), ([[7, 8]], [1], 0)])
        x = Int8Matrix.from_rows([[1, 2, 3], [-4, 5, 100]])
        t = model.trace(x)
        trace = b"OMLT\x01\x02" + struct.pack("<III", 2, 2, 1)
        trace += b"".join(a.to_omt()[16:] for a in t.accumulators) + t.output.to_omt()[16:]
        self._serve_output(trace)  # the kind from the content
        with tempfile.TemporaryDirectory() as d:
            r = self.c.result("job-1", download_to=d)
            assert isinstance(r, TensorResult)
            self.assertEqual((r.kernel, r.matrix, r.trace), ("mlp-int8", model.forward(x), t))
            self.assertEqual(Int8Matrix.from_npy(r.path.read_bytes()).tolist(), [[22], [127]])  # type: ignore[union-attr]

        zk = b"OMZR\x01" + struct.pack(">I", 2) + bytes([5, 0xFB]) + struct.pack(">I", 3) + b"prf"
        self._serve_output(zk)
        r = self.c.result("job-1")
        self.assertEqual((r.kernel, r.matrix.tolist(), r.proof), ("mlp-int8", [[5, -5]], b"prf"))  # type: ignore[union-attr]

        self._serve_output(Int32Matrix.from_rows([[1]]).to_omt())
        self.assertEqual(self.c.result("job-1").kernel, "matmul-int8")  # type: ignore[union-attr]
        self._serve_output(Int8Matrix.from_rows([[1]]).to_omt(), kind="tensor")
        with self.assertRaises(EncodingError):
            self.c.result("job-1")

    def _accept_jobs(self) -> List[Dict[str, Any]]:
        """Routes taking a job submission; returns the list the posted bodies go to."""
        posted: List[Dict[str, Any]] = []
        addr = self.key.address
        self.srv.routes[f"GET /v1/accounts/{addr}"] = lambda h: js(200, {"address": addr, "balance": 10**9, "seq": 5})

        def post(h: Handler) -> Reply:
            posted.append(parse_submission(h))
            return js(200, job("placed"))

        self.srv.routes["POST /v1/jobs"] = post
        return posted

    def test_submit_matmul_fp32(self) -> None:
        posted = self._accept_jobs()
        a, b = [[1.0, 0.5], [-2.0, 0.1]], Float32Matrix.from_rows([[3.0], [4.0]])
        self.c.submit_tensor({"a": a, "b": b.to_npy()}, kernel="matmul-fp32", verification="audit")
        post = next(hd for meth, p, hd, _ in self.srv.requests if meth == "POST" and p == "/v1/jobs")
        self.assertTrue(post["Content-Type"].startswith("multipart/form-data; boundary=omnisync-"), post["Content-Type"])
        spec, data = posted[0]["spec"], posted[0]["input_data"]
        self.assertEqual(spec["workload"], {"kind": "tensor", "kernel": "matmul-fp32"})
        self.assertEqual(spec["verification"], "audit")
        self.assertEqual([i["name"] for i in spec["inputs"]], ["a", "b"])
        self.assertEqual(Float32Matrix.from_omt(base64.b64decode(data["a"])), Float32Matrix.from_rows(a))
        self.assertEqual(base64.b64decode(data["b"]), b.to_omt())

    def test_submit_mlp(self) -> None:
        posted = self._accept_jobs()
        layers = [([[1, 2, 3], [4, 5, -6]], [10, -20], 3), ([[7, 8]], [1], 0)]
        x = [[1, 2, 3], [-4, 5, 100]]
        self.c.submit_mlp(layers, x, budget_uomni=2_000_000)
        self.c.submit_tensor({"model": MLP.from_layers(layers).to_npz(), "x": x}, kernel="mlp-int8")
        for body in posted:
            spec, data = body["spec"], body["input_data"]
            self.assertEqual(spec["workload"], {"kind": "tensor", "kernel": "mlp-int8"})
            self.assertEqual([i["name"] for i in spec["inputs"]], ["model", "x"])
            self.assertEqual(base64.b64decode(data["model"]), MLP.from_layers(layers).to_omzm())
            self.assertEqual(base64.b64decode(data["x"]), Int8Matrix.from_rows(x).to_omt())
        self.assertEqual(posted[0]["spec"]["budget"], 2_000_000)

    def _fake_router(self, committed: int, escrow_after: int = 0) -> Dict[str, Any]:
        """Routes taking submissions as the router's intake does, sequences included: a
        synchronous one must carry the committed sequence, an async one the mempool's next,
        within MAX_PENDING of it; the async jobs stay queued, unescrowed, until
        state["commit"]() (or, with escrow_after, that many reads of the job). Uploads are
        refused until the job's escrow has committed."""
        addr = self.key.address
        state: Dict[str, Any] = {"committed": committed, "pending": [], "jobs": {}, "posted": [], "uploads": [], "reads": 0}
        lock = threading.Lock()

        def commit() -> None:
            with lock:
                for jid in state["pending"]:
                    state["jobs"][jid]["events"].append({"time": "2026-11-30T07:08:17Z", "stage": "escrowed", "message": "locked"})
                state["committed"] += len(state["pending"])
                state["pending"] = []

        state["commit"] = commit
        self.srv.routes[f"GET /v1/accounts/{addr}"] = lambda h: js(200, {"address": addr, "balance": 10**9, "seq": state["committed"]})

        def post(h: Handler) -> Reply:
            body = parse_submission(h)
            raw = base64.b64decode(body["tx"])
            seq = json.loads(raw[97:])["seq"]
            asyn = body.get("async", False)
            with lock:
                state["posted"].append((seq, asyn))
                c, jid = state["committed"], job_id(addr, seq)
                if not asyn and seq != c:
                    return js(409, {"error": f"tx sequence {seq}, account expects {c}", "code": "conflict"})
                if asyn and not c <= seq < c + 64:
                    return js(409, {"error": f"tx sequence {seq}, account expects {c} to {c + 63}", "code": "conflict"})
                old = state["jobs"].get(jid)
                if old and not (old["status"] == "failed" and not any(e["stage"] == "escrowed" for e in old["events"])):
                    return js(409, {"error": f"job {jid} was already submitted", "code": "conflict"})
                if seq != c + len(state["pending"]):
                    return js(400, {"error": f"escrow budget: wrong sequence {seq}", "code": "bad_request"})
                j = {**job("queued"), "id": jid}
                state["jobs"][jid] = j
                if asyn:
                    state["pending"].append(jid)
                else:
                    state["committed"] += 1
                    j["events"].append({"time": "2026-11-30T07:08:17Z", "stage": "escrowed", "message": "locked"})
                return js(200, j)

        def get(h: Handler) -> Reply:
            jid = h.path.split("/")[3]
            with lock:
                state["reads"] += 1
                known = jid in state["jobs"]
            if escrow_after and known and state["reads"] >= escrow_after:
                commit()
            with lock:
                if jid not in state["jobs"]:
                    return js(404, {"error": f"not found: job {jid}", "code": "not_found"})
                return js(200, state["jobs"][jid])

        def put(h: Handler) -> Reply:
            jid = h.path.split("/")[3]
            with lock:
                if not any(e["stage"] == "escrowed" for e in state["jobs"][jid]["events"]):
                    return js(409, {"error": f"job {jid} has no committed escrow yet", "code": "conflict"})
                state["uploads"].append((jid, h.path.split("/")[5]))
            return js(200, {})

        self.srv.routes["POST /v1/jobs"] = post
        for seq in range(committed, committed + 70):
            jid = job_id(addr, seq)
            self.srv.routes[f"GET /v1/jobs/{jid}"] = get
            self.srv.routes[f"PUT /v1/jobs/{jid}/inputs/big"] = put
        return state

    def test_async_submissions_sign_consecutive_sequences(self) -> None:
        st = self._fake_router(5)
        a, b = [[1, 2]], [[3], [4]]
        first = [self.c.submit_tensor({"a": a, "b": b}, async_=True) for _ in range(3)]
        self.assertEqual([j.id for j in first], [job_id(self.key.address, s) for s in (5, 6, 7)])
        self.assertEqual([j.status for j in first], ["queued"] * 3)
        self.assertEqual(st["posted"], [(5, True), (6, True), (7, True)])
        # The client counts its own sequences: only the first submission looked for a free one.
        self.assertEqual(len([p for m, p, _, _ in self.srv.requests if m == "GET" and p.startswith("/v1/jobs/")]), 1)

        # A new client of the same key learns the pending jobs' sequences from the router.
        other = Client(self.srv.url, key=self.key, chain_id="test")
        self.assertEqual(other.submit_tensor({"a": a, "b": b}, async_=True).id, job_id(self.key.address, 8))
        # Synchronous, the committed sequence is a pending job's.
        with self.assertRaises(Conflict) as cm:
            self.c.submit_tensor({"a": a, "b": b})
        self.assertIn("already submitted", str(cm.exception))
        # An explicit sequence a pending job holds, and the hint what to do.
        with self.assertRaises(Conflict) as cm:
            self.c.submit_tensor({"a": a, "b": b}, async_=True, sequence=6)
        self.assertIn("pass a free sequence=", str(cm.exception))
        with self.assertRaises(ValueError):
            self.c.submit_tensor({"a": a, "b": b}, sequence=9)

        st["commit"]()
        self.assertEqual(self.c.submit_tensor({"a": a, "b": b}).id, job_id(self.key.address, 9))
        self.assertEqual(st["posted"][-1], (9, False))
        self.assertEqual(self.c.submit_tensor({"a": a, "b": b}, async_=True).id, job_id(self.key.address, 10))

    def test_async_reuses_a_refused_escrows_sequence(self) -> None:
        st = self._fake_router(5)
        refused = job_id(self.key.address, 5)
        failed = {**job("failed", error="escrow budget: insufficient funds; nothing was escrowed"), "id": refused}
        failed["events"] = [{"time": "2026-11-30T07:08:17Z", "stage": "failed", "message": "nothing was escrowed"}]
        st["jobs"][refused] = failed
        # Its block refused the escrow: sequence 5 is unused, and signed again.
        j = self.c.submit_tensor({"a": [[1, 2]], "b": [[3], [4]]}, async_=True)
        self.assertEqual((j.id, st["posted"]), (refused, [(5, True)]))

    def test_async_waits_for_room_in_the_window(self) -> None:
        st = self._fake_router(0)
        a, b = [[1, 2]], [[3], [4]]
        for _ in range(64):
            self.c.submit_tensor({"a": a, "b": b}, async_=True)
        threading.Timer(0.3, st["commit"]).start()
        t = time.monotonic()
        j = self.c.submit_tensor({"a": a, "b": b}, async_=True)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.assertEqual(j.id, job_id(self.key.address, 64))
        self.assertEqual(st["posted"][-1], (64, True))

    def test_async_uploads_once_escrowed(self) -> None:
        st = self._fake_router(2, escrow_after=3)
        c = Client(self.srv.url, key=self.key, chain_id="test", inline_limit=4)
        c.submit_container("train:v1", inputs={"big": b"0123456789"}, async_=True)
        jid = job_id(self.key.address, 2)
        self.assertEqual(st["uploads"], [(jid, "big")])
        self.assertEqual(st["posted"], [(2, True)])

    def test_tensor_inputs_refused_before_anything_is_sent(self) -> None:
        posted = self._accept_jobs()
        layers = [([[1, 2, 3]], [0], 0)]
        f = [[1.0, 2.0]]
        cases = [
            (lambda: self.c.submit_tensor({"a": f, "b": [[1.0], [2.0]]}, kernel="matmul-fp32", verification="challenge"), SpecError, "hides exact int8 rows"),
            (lambda: self.c.submit_tensor({"a": f, "b": [[float("nan")], [2.0]]}, kernel="matmul-fp32"), EncodingError, "input b: row 0 holds nan"),
            (lambda: self.c.submit_tensor({"a": f, "b": Int8Matrix.from_rows([[1], [2]]).to_npy()}, kernel="matmul-fp32"), EncodingError, "input b: npy dtype '|i1': want float32"),
            (lambda: self.c.submit_tensor({"a": f, "b": f}, kernel="matmul-fp32"), SpecError, "cannot multiply 1x2 by 1x2"),
            (lambda: self.c.submit_tensor({"a": f, "b": [[1e-40], [1.0]]}, kernel="matmul-fp32"), SpecError, "subnormal"),
            (lambda: self.c.submit_mlp(layers, [[1, 2]]), SpecError, "X is 1x2, the model takes 3 inputs"),
            (lambda: self.c.submit_mlp([([[1, 2, 3]], [0], 32)], [[1, 2, 3]]), EncodingError, "input model: layer 0 shift 32"),
            (lambda: self.c.submit_mlp(layers, [[1, 2, 3]], verification="zk"), SpecError, "Poseidon2 over BN254"),
            (lambda: self.c.submit_mlp(layers, [[1, 2, 3]], verification="redundant"), SpecError, "layer by layer"),
            (lambda: self.c.submit_tensor({"model": layers}, kernel="mlp-int8"), SpecError, "takes 2 inputs [model, x], got 1"),
            (lambda: self.c.submit_tensor({"a": [[1]], "b": [[1]]}, kernel="conv-int8"), SpecError, "unknown kernel 'conv-int8'"),
        ]
        for call, exc, words in cases:
            with self.subTest(words), self.assertRaises(exc) as cm:
                call()
            self.assertIn(words, str(cm.exception))
        self.assertEqual(posted, [])
        self.assertEqual([r for r in self.srv.requests if r[0] == "POST"], [])

    def test_no_key(self) -> None:
        with self.assertRaises(OmniSyncError):
            Client(self.srv.url).cancel("job-1")
        with self.assertRaises(OmniSyncError):
            Client(self.srv.url).list()
        with self.assertRaises(OmniSyncError):
            Client(self.srv.url).logs("job-1")

    # Logs.

    def _auth_ok(self, header: str, message: bytes) -> bool:
        expires = int(header.split('expires="')[1].split('"')[0])
        sig = base64.b64decode(header.split('signature="')[1].rstrip('"'))
        self.assertIn(f'address="{self.key.address}"', header)
        self.assertLessEqual(expires - time.time(), 61)
        return verify(self.key.address, message(expires), sig)  # type: ignore[operator]

    def _serve_logs(self, answers: List[Any]) -> List[Dict[str, List[str]]]:
        """Serve GET /v1/jobs/job-1/logs from answers in turn (each a JobLogs dict, or a
        Reply), checking every request's signature; returns each request's query."""
        queries: List[Dict[str, List[str]]] = []
        it = iter(answers)

        def route(h: Handler) -> Reply:
            self.assertTrue(self._auth_ok(h.headers["Authorization"], lambda e: output_auth_message("job-1", e)))
            queries.append(parse_qs(urlsplit(h.path).query))
            a = next(it)
            if isinstance(a, tuple):
                return a
            if "data" in a:
                a = {**a, "data": base64.b64encode(a["data"]).decode()}
            return js(200, {"job_id": "job-1", **a})

        self.srv.routes["GET /v1/jobs/job-1/logs"] = route
        return queries

    def test_logs_read_once(self) -> None:
        q = self._serve_logs([{"node": "n1", "from": 0, "next": 7, "data": b"h\xc3\xa9llo\n\xff"}])
        self.assertEqual(self.c.logs("job-1"), "héllo\n\ufffd")
        self.assertEqual(q, [{"from": ["0"]}])
        q = self._serve_logs([{"node": "n2", "nodes": ["n1", "n2"], "from": 5, "next": 7, "data": b"o\n", "eof": True}])
        self.assertEqual(self.c.logs("job-1", node="n2", since=5, text=False), b"o\n")
        self.assertEqual(q, [{"from": ["5"], "node": ["n2"]}])
        self._serve_logs([{"from": 0, "next": 0, "final": True}])
        self.assertEqual(self.c.logs("job-1"), "")  # nobody logged, or forgotten
        self._serve_logs([{"node": "n1", "nodes": ["n1", "n2"], "from": 9, "next": 10, "data": b"x", "truncated": True}])
        reads = list(self.c.log_reads("job-1", since=3))
        self.assertEqual(len(reads), 1)
        self.assertEqual((reads[0].node, reads[0].nodes, reads[0].start, reads[0].next, reads[0].truncated), ("n1", ["n1", "n2"], 9, 10, True))
        with self.assertRaises(ValueError):
            self.c.logs("job-1", since=-1)

    def test_logs_follow(self) -> None:
        text = "héllo wörld\n"
        raw = text.encode()
        q = self._serve_logs(
            [
                {"node": "n1", "nodes": ["n1", "n2"], "from": 0, "next": 2, "data": raw[:2]},  # splits the é
                js(503, {"error": "busy", "code": "unavailable"}),  # ridden out while following
                {"node": "n1", "from": 2, "next": 2},
                {"node": "n1", "from": 2, "next": len(raw), "data": raw[2:], "final": True},  # new data: ask once more
                {"node": "n1", "from": len(raw), "next": len(raw), "final": True},
            ]
        )
        pieces = list(self.c.logs("job-1", follow=True, poll_interval=0.01))
        self.assertEqual("".join(pieces), text)
        self.assertEqual(pieces[0], "h")  # the split character came out whole, later
        self.assertEqual([x.get("from") for x in q], [["0"], ["2"], ["2"], ["2"], [str(len(raw))]])
        self.assertEqual([x.get("node") for x in q], [None] + [["n1"]] * 4)  # stays with the first read's node
        self._serve_logs([{"node": "n1", "from": 0, "next": 3, "data": b"abc", "final": True, "eof": True}])
        self.assertEqual(list(self.c.logs("job-1", follow=True, text=False, poll_interval=0.01)), [b"abc"])

    def test_logs_follow_fails_fast_and_times_out(self) -> None:
        self._serve_logs([js(503, {"error": "this is a chain node's REST API", "code": "unavailable"})])
        with self.assertRaises(Unavailable):
            list(self.c.logs("job-1", follow=True))  # the first read's error is not passing
        self._serve_logs([{"from": 0, "next": 0}] * 1000)  # the job never ends
        with self.assertRaises(WaitTimeout):
            list(self.c.logs("job-1", follow=True, poll_interval=0.01, timeout=0.2))

    # Job lists.

    def _serve_list(self, pages: Dict[str, Dict[str, Any]]) -> List[Dict[str, List[str]]]:
        queries: List[Dict[str, List[str]]] = []

        def route(h: Handler) -> Reply:
            self.assertTrue(self._auth_ok(h.headers["Authorization"], lambda e: job_list_auth_message(self.key.address, e)))
            q = parse_qs(urlsplit(h.path).query)
            queries.append(q)
            return js(200, pages[q.get("after", [""])[0]])

        self.srv.routes["GET /v1/jobs"] = route
        return queries

    def test_list_pages(self) -> None:
        j = lambda i, st="settled": job(st, id=f"job-{i}", kind="tensor")  # noqa: E731
        q = self._serve_list({"": {"jobs": [j(3), j(2)], "next": "job-2"}, "job-2": {"jobs": [j(1, "failed")]}})
        page = self.c.list(limit=2)
        self.assertEqual([x.id for x in page], ["job-3", "job-2"])
        self.assertEqual((page.next, page.from_chain, page[0].kind), ("job-2", False, "tensor"))
        last = self.c.list(limit=2, status="failed", after=page.next)
        self.assertEqual(([x.status for x in last], last.next), (["failed"], ""))
        self.assertEqual(q, [{"limit": ["2"]}, {"limit": ["2"], "status": ["failed"], "after": ["job-2"]}])
        self.assertEqual([x.id for x in self.c.iter_jobs(page_size=2)], ["job-3", "job-2", "job-1"])
        for bad in (0, 501):
            with self.assertRaises(ValueError):
                self.c.list(limit=bad)

    # Node history.

    def test_node_history(self) -> None:
        node = SigningKey(bytes([4] * 32)).address
        queries: List[Dict[str, List[str]]] = []

        def route(h: Handler) -> Reply:
            queries.append(parse_qs(urlsplit(h.path).query))
            return js(200, {
                "node": node,
                "record": {"settled": 41, "failed": 2, "slashes": 1, "earned": 12345678, "slashed": 50000000, "last_unix": 1767225900},
                "entries": [
                    {"height": 1207, "time_unix": 1767225900, "kind": "slashed", "job_id": "job-9", "amount": 50000000, "reason": "wrong result for job-9"},
                    {"height": 1181, "time_unix": 1767225700, "kind": "settled", "job_id": "job-7", "paid": 294000, "reward": 15000},
                ],
                "next_before": 1181,
            })

        self.srv.routes[f"GET /v1/nodes/{node}/history"] = route
        h = self.c.node_history(node)
        self.assertEqual((h.node, h.record.settled, h.record.slashes, h.record.earned, h.next_before), (node, 41, 1, 12345678, 1181))
        self.assertEqual([(e.kind, e.job_id, e.paid + e.reward, e.amount) for e in h.entries],
                         [("slashed", "job-9", 0, 50000000), ("settled", "job-7", 309000, 0)])
        self.c.node_history(node, before=h.next_before, limit=2)
        self.assertEqual(queries, [{}, {"before": ["1181"], "limit": ["2"]}])
        for bad in ({"limit": 0}, {"limit": 201}, {"before": 0}):
            with self.assertRaises(ValueError):
                self.c.node_history(node, **bad)
        # The server refuses an id that is not an address (a node never heard of is an
        # empty history, not an error).
        self.srv.routes["GET /v1/nodes/nobody/history"] = lambda h: js(400, {"error": "id: invalid address", "code": "invalid"})
        with self.assertRaises(BadRequest):
            self.c.node_history("nobody")

    def _serve_chain(self, statuses: Dict[int, str]) -> None:
        """An account whose transactions 0..4 created jobs with these statuses (the others
        were not create_jobs)."""
        addr = self.key.address
        self.srv.routes[f"GET /v1/accounts/{addr}"] = lambda h: js(200, {"address": addr, "balance": 1, "seq": 5})
        for seq in range(5):
            jid = job_id(addr, seq)
            if seq in statuses:
                self.srv.routes[f"GET /v1/jobs/{jid}"] = lambda h, jid=jid, st=statuses[seq]: js(200, job(st, 2, id=jid))
            else:
                self.srv.routes[f"GET /v1/jobs/{jid}"] = lambda h, jid=jid: js(404, {"error": f"not found: job {jid}", "code": "not_found"})

    def test_list_falls_back_to_the_chain_only_where_no_list_is_kept(self) -> None:
        addr = self.key.address
        self._serve_chain({4: "running", 2: "settled", 0: "settled"})
        newest = [job_id(addr, s) for s in (4, 2, 0)]
        self.srv.routes["GET /v1/jobs"] = lambda h: js(503, {"error": "this is a chain node's REST API, which runs no router", "code": "unavailable"})
        page = self.c.list(limit=2)
        self.assertTrue(page.from_chain)
        self.assertEqual(([x.id for x in page], page.next), (newest[:2], newest[1]))
        self.assertEqual(page[0].events, [])  # as the route lists them
        self.assertEqual([x.id for x in self.c.list(limit=2, after=page.next)], newest[2:])
        self.assertEqual([x.id for x in self.c.list(status="settled")], newest[1:])
        self.assertEqual([x.id for x in self.c.iter_jobs(page_size=1)], newest)
        with self.assertRaises(ValueError):
            self.c.list(after="job-nope")
        for reply, cls in (
            (js(503, {"error": "busy", "code": "internal"}), Unavailable),
            ((503, {"Content-Type": "text/html"}, b"<html>busy</html>"), Unavailable),
            (js(401, {"error": "expired", "code": "unauthorized"}), Unauthorized),
        ):
            with self.subTest(status=reply[0], body=reply[2][:20]):
                self.srv.routes["GET /v1/jobs"] = lambda h, r=reply: r
                with self.assertRaises(cls):
                    self.c.list()
                with self.assertRaises(cls):
                    next(self.c.iter_jobs())
        # chain=True reads the chain even where the route answers.
        self._serve_list({"": {"jobs": []}})
        self.assertEqual([x.id for x in self.c.list(chain=True)], newest)
        self.assertEqual(list(self.c.list()), [])


class ModelsTest(unittest.TestCase):
    def test_an_unaudited_audit_job_succeeds_unverified(self) -> None:
        unaudited = Job.from_dict(job("settled", verification="audit", verified=False))
        self.assertTrue(unaudited.succeeded and unaudited.settled_unaudited)
        audited = Job.from_dict(job("settled", verification="audit", audited=True))
        self.assertTrue(audited.succeeded and audited.audited and not audited.settled_unaudited)
        # Any other settled job must be verified to have succeeded.
        self.assertFalse(Job.from_dict(job("settled", verification="freivalds", verified=False)).succeeded)
        self.assertFalse(Job.from_dict(job("failed", verification="audit")).succeeded)

    def test_replicas_without_digests(self) -> None:
        d = "sha256:" + "ab" * 32
        j = Job.from_dict(
            job(
                "settled",
                kind="container",
                verification="redundant",
                result_digest=d,
                replicas=[{"node": "a"}, {"node": "b", "result_digest": d, "paid": 603, "reward": 92}, {"node": "c", "result_digest": None, "paid": None}],
            )
        )
        self.assertEqual(j.kind, "container")
        self.assertEqual([(r.node, r.result_digest, r.paid, r.reward, r.revealed) for r in j.replicas], [("a", "", 0, 0, False), ("b", d, 603, 92, True), ("c", "", 0, 0, False)])
        self.assertEqual([r.node for r in j.agreed], ["b"])
        running = Job.from_dict(job("running", verification="redundant", replicas=[{"node": "a"}, {"node": "b"}, {"node": "c"}]))
        self.assertEqual(running.agreed, [])  # sealed digests are not shown yet
        self.assertFalse(any(r.revealed for r in running.replicas))
        self.assertEqual(Job.from_dict(job("queued", replicas=None)).replicas, [])
        self.assertEqual(Job.from_dict(job("queued")).kind, "")  # an older server

    def test_job_list_and_logs(self) -> None:
        jl = JobList.from_dict({"jobs": [job("settled"), "junk"], "next": "job-1"})
        self.assertEqual((len(jl), jl.next, jl.from_chain, jl.jobs[0].id), (1, "job-1", False, "job-1"))
        self.assertEqual(JobList.from_dict({"jobs": None}), [])
        logs = JobLogs.from_dict({"job_id": "job-1", "from": 3, "next": 5, "data": "aGk=", "final": True})
        self.assertEqual((logs.start, logs.next, logs.data, logs.eof, logs.done), (3, 5, b"hi", False, False))
        self.assertTrue(JobLogs.from_dict({"from": 5, "next": 5, "final": True}).done)
        with self.assertRaises(ValueError):
            JobLogs.from_dict({"data": "not base64!"})


if __name__ == "__main__":
    unittest.main()
