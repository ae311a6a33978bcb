"""The client against a scripted fake server: error mapping, event streams and their
fallback to polling, output checks. The real server is exercised in test_devnet."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import (
    BadRequest,
    Client,
    Conflict,
    DigestMismatch,
    Forbidden,
    InsufficientFunds,
    Int32Matrix,
    NotFound,
    NotSupportedByServer,
    OmniSyncError,
    ServerError,
    SigningKey,
    TransportError,
    Unauthorized,
    Unavailable,
    UnverifiedResult,
    WaitTimeout,
)
from omnisync.keys import verify
from omnisync.signing import output_auth_message

Reply = Tuple[int, Dict[str, str], bytes]
Route = Callable[["Handler"], Optional[Reply]]


def js(status: int, v: Any, **headers: str) -> Reply:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(v).encode()


def job(status: str, events: int = 0, **kw: Any) -> Dict[str, Any]:
    evs = [{"time": "2026-11-30T07:08:17.807689994Z", "stage": f"s{i}", "message": f"m{i}"} for i in range(events)]
    return {"id": "job-1", "consumer": "c", "status": status, "verified": status == "settled", "attempts": 0, "events": evs, **kw}


class Handler(BaseHTTPRequestHandler):
    server: "FakeServer"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _serve(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        self.server.requests.append((self.command, self.path, dict(self.headers), self.body))
        route = self.server.routes.get(f"{self.command} {self.path}")
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
        self.srv.routes["GET /v1/jobs/job-1/logs"] = lambda h: (200, {"Content-Type": "text/plain"}, "line 1\né\n".encode())
        self.assertEqual(self.c.logs("job-1"), "line 1\né\n")

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

    def _serve_output(self, data: bytes, digest: Optional[str] = None, verified: str = "true", committed: Optional[str] = None) -> None:
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()

        def output(h: Handler) -> Reply:
            return 200, {"Omni-Digest": digest, "Omni-Verified": verified, "Omni-Job-Status": "settled"}, data

        self.srv.routes["GET /v1/jobs/job-1/output"] = output
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(200, job("settled", result_digest=committed or digest))

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

    def test_no_key(self) -> None:
        with self.assertRaises(OmniSyncError):
            Client(self.srv.url).cancel("job-1")


if __name__ == "__main__":
    unittest.main()
