"""A client of several URLs: a request one does not serve goes on to the next, as the Go
client's (api/failover_test.go)."""

from __future__ import annotations

import socket
import tempfile
import threading
import unittest
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import support  # noqa: F401  (puts the SDK on sys.path)
from test_client import FakeServer, Handler, Reply, js, job, sse

from omnisync import Client, Conflict, SigningKey, TooManyRequests, TransportError, Unavailable
from omnisync.errors import FailoverError, FailoverUnavailable


def dead_url() -> str:
    """The URL of a port nothing listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def drop(h: Handler) -> None:
    """A route that closes the connection without an answer (the request was read)."""
    h.close_connection = True


def status(code: int) -> Callable[[Handler], Reply]:
    if code == 503:
        return lambda h: js(503, {"error": "service unavailable: cut off from the cluster", "code": "unavailable"}, **{"Retry-After": "2"})
    if code == 409:
        return lambda h: js(409, {"error": "conflict: sequence 4 already used", "code": "conflict"})
    return lambda h: (code, {"Content-Type": "text/html"}, b"<html>bad gateway</html>")


class Closer:
    """A URL that takes connections and closes them at once, counting them: a request sent
    there fails fast, whatever its body."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def paths(srv: FakeServer) -> List[str]:
    return [f"{m} {p}" for m, p, _, _ in srv.requests]


class FailoverTest(unittest.TestCase):
    def setUp(self) -> None:
        self.key = SigningKey(bytes(32))
        self.live = self.server()
        addr = self.key.address
        self.live.routes[f"GET /v1/accounts/{addr}"] = lambda h: js(200, {"address": addr, "balance": 10**9, "seq": 5})
        self.live.routes["GET /v1/jobs/job-1"] = lambda h: js(200, job("running"))
        self.live.routes["POST /v1/jobs"] = lambda h: js(200, job("placed"))
        self.live.routes["PUT /v1/jobs/job-1/inputs/a"] = lambda h: js(200, {})

    def server(self) -> FakeServer:
        srv = FakeServer()
        srv.block_on_close = False  # a handler a test leaves waiting must not hang the test
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv

    def client(self, *urls: str, timeout: float = 5) -> Client:
        c = Client(",".join(urls), key=self.key, chain_id="test", timeout=timeout)
        c._t.sleep = lambda s: None  # no real waiting on a 429
        return c

    def first(self, kind: str, route: Optional[Callable[[Handler], Optional[Reply]]] = None) -> Optional[FakeServer]:
        """A first URL's server whose job reads and submissions get route; None for a
        refused URL. Account reads it answers, so a submission's POST is what fails over."""
        if route is None:
            return None
        srv = self.server()
        addr = self.key.address
        srv.routes[f"GET /v1/accounts/{addr}"] = lambda h: js(200, {"address": addr, "balance": 10**9, "seq": 5})
        srv.routes["GET /v1/jobs/job-1"] = route
        srv.routes["POST /v1/jobs"] = route
        return srv

    def test_a_request_goes_on_to_the_next_url(self) -> None:
        release = threading.Event()
        self.addCleanup(release.set)

        def silent(h: Handler) -> None:
            release.wait(10)
            drop(h)

        firsts = {"refused": None, "dropped": drop, "silent": silent, "502": status(502), "503": status(503), "504": status(504)}
        calls = {
            "GET /v1/jobs/job-1": lambda c: c.get("job-1"),
            "POST /v1/jobs": lambda c: c.submit_container("train:v1"),
        }
        for kind, route in firsts.items():
            for want, call in calls.items():
                with self.subTest(first=kind, call=want):
                    a = self.first(kind, route)
                    self.live.requests.clear()
                    c = self.client(a.url if a else dead_url(), self.live.url, timeout=0.5 if kind == "silent" else 5)

                    call(c)
                    self.assertEqual(paths(self.live)[-1:], [want])
                    if a is not None:
                        self.assertEqual(paths(a)[-1], want)
                        self.assertEqual(a.requests[-1][3], self.live.requests[-1][3], "the same body at both")

                    # The next request starts at the URL that answered last.
                    before = len(a.requests) if a else 0
                    self.assertEqual(c.get("job-1").status, "running")
                    self.assertEqual(len(a.requests) if a else 0, before)
                    self.assertEqual(paths(self.live)[-1], "GET /v1/jobs/job-1")

    def test_any_other_answer_is_the_answer(self) -> None:
        a = self.first("409", status(409))
        assert a is not None
        c = self.client(a.url, self.live.url)
        with self.assertRaises(Conflict):
            c.get("job-1")
        self.assertEqual(self.live.requests, [])

    def test_an_upload_is_sent_once(self) -> None:
        a = self.server()
        a.routes["PUT /v1/jobs/job-1/inputs/a"] = drop
        second = Closer()
        self.addCleanup(second.close)
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "a.bin"
            f.write_bytes(b"x" * (1 << 20))
            for name, data in (("streamed", f), ("in memory", f.read_bytes())):
                with self.subTest(body=name):
                    a.requests.clear()
                    with self.assertRaises(TransportError) as cm:
                        self.client(a.url, second.url).upload_input("job-1", "a", data)
                    self.assertNotIsInstance(cm.exception, FailoverError)
                    self.assertIn(a.url[:-3], str(cm.exception))
                    self.assertEqual(len(a.requests), 1)
                    self.assertEqual(second.connections, 0, "the upload went to the second URL")

    def test_the_error_names_every_url(self) -> None:
        dead = dead_url()
        unavailable, gateway = self.server(), self.server()
        unavailable.routes["GET /v1/jobs/job-1"] = status(503)
        gateway.routes["GET /v1/jobs/job-1"] = status(502)
        c = self.client(dead + "/v1", unavailable.url, gateway.url)

        with self.assertRaises(FailoverUnavailable) as cm:
            c.get("job-1")
        e = cm.exception
        for want in (
            "GET /v1/jobs/job-1: ",
            f"{dead} did not answer (",
            f"{unavailable.url[:-3]} answered 503 (service unavailable: cut off from the cluster)",
            f"{gateway.url[:-3]} answered 502; ",
        ):
            self.assertIn(want, str(e) + "; ")
        # Still the unavailable kind, which except clauses and wait ride out.
        self.assertIsInstance(e, Unavailable)
        self.assertIsInstance(e, TransportError)
        self.assertEqual((e.status, e.retry_after, e.retryable), (503, 2.0, True))
        self.assertEqual([u for u, _ in e.failed], [dead, unavailable.url[:-3], gateway.url[:-3]])
        self.assertEqual((len(unavailable.requests), len(gateway.requests)), (1, 1))

        # None answered: a transport error alone.
        dropping = self.server()
        dropping.routes["GET /v1/jobs/job-1"] = drop
        with self.assertRaises(FailoverError) as cm:
            self.client(dead, dropping.url).get("job-1")
        self.assertNotIsInstance(cm.exception, Unavailable)
        self.assertIn(f"{dropping.url[:-3]} did not answer (", str(cm.exception))

    def test_the_timeout_bounds_the_whole_call(self) -> None:
        # Each URL gets an equal share of what is left: a refusal leaves its share to the
        # URLs after it, and URLs that never answer take the timeout once, not once each.
        c = self.client("http://refuses", "http://silent-1", "http://silent-2", timeout=9)
        now = [100.0]
        c._t.clock = lambda: now[0]
        given: List[Tuple[str, float]] = []

        class Conn:
            def __init__(self, url: str, timeout: float) -> None:
                self.url, self.timeout = url, timeout

            def request(self, *args: object, **kwargs: object) -> None:
                if self.url == "http://refuses":
                    raise ConnectionRefusedError("refused")

            def getresponse(self) -> None:
                now[0] += self.timeout
                raise socket.timeout("timed out")

            def close(self) -> None:
                pass

        def connection(base: object, timeout: float) -> Conn:
            given.append((base.url, timeout))  # type: ignore[attr-defined]
            return Conn(base.url, timeout)  # type: ignore[attr-defined]

        c._t._connection = connection  # type: ignore[assignment]
        with self.assertRaises(FailoverError) as cm:
            c.get("job-1")
        self.assertEqual(given, [("http://refuses", 3.0), ("http://silent-1", 4.5), ("http://silent-2", 4.5)])
        self.assertEqual(now[0], 109.0)
        self.assertEqual([u for u, _ in cm.exception.failed], ["http://refuses", "http://silent-1", "http://silent-2"])

        # A 429's wait that would end past the URL's share is not waited: the 429 is the answer.
        given.clear()
        slept: List[float] = []
        c._t.sleep = slept.append
        tmr = TooManyRequests(429, "too many requests", method="GET", path="/v1/jobs/job-1")
        tmr.retry_after = 5.0

        def open_once(base: object, *args: object) -> None:
            given.append((base.url, args[-1]))  # type: ignore[attr-defined]
            raise tmr

        c._t._open_once = open_once  # type: ignore[assignment]
        with self.assertRaises(TooManyRequests):
            c.get("job-1")
        self.assertEqual((given, slept), ([("http://refuses", 3.0)], []))

    def test_one_url_behaves_as_before(self) -> None:
        self.live.routes["GET /v1/jobs/job-1"] = status(503)
        c = self.client(self.live.url)
        self.assertEqual(c.urls, (self.live.url[:-3],))
        with self.assertRaises(Unavailable) as cm:
            c.get("job-1")
        self.assertNotIsInstance(cm.exception, FailoverError)
        self.assertEqual(str(cm.exception), "service unavailable: cut off from the cluster")
        self.assertEqual(len(self.live.requests), 1)

        dead = dead_url()
        with self.assertRaises(TransportError) as cm:
            self.client(dead).get("job-1")
        self.assertNotIsInstance(cm.exception, FailoverError)
        self.assertIn(f"GET {dead}/v1/jobs/job-1: cannot reach the OmniSync REST API: ", str(cm.exception))

    def test_urls_are_parsed_as_the_go_client_does(self) -> None:
        c = Client(" http://a:7070/v1/ ,http://b:7070//,, http://c:7070/v1")
        self.assertEqual(c.urls, ("http://a:7070", "http://b:7070", "http://c:7070"))
        self.assertEqual(c.url, "http://a:7070")
        self.assertEqual(Client(["http://a:7070/v1", "http://b:7070"]).urls, ("http://a:7070", "http://b:7070"))
        with self.assertRaises(ValueError):
            Client(" , ")

    def test_the_event_stream_resumes_at_the_next_url(self) -> None:
        a = self.server()
        a.routes["GET /v1/jobs/job-1/events"] = sse([("job", job("running", 1))], end=False)
        self.live.routes["GET /v1/jobs/job-1/events"] = sse([("job", job("running", 1)), ("job", job("settled", 2))])
        c = self.client(a.url, self.live.url)

        seen: List[str] = []
        final = c.wait("job-1", lambda j: seen.append(j.status), timeout=10, poll_interval=0.01)
        self.assertEqual((final.status, seen), ("settled", ["running", "settled"]))
        polls = [p for p in paths(a) + paths(self.live) if p == "GET /v1/jobs/job-1"]
        self.assertEqual(polls, [], "polled instead of following the stream at the next URL")

        c.get("job-1")  # and the next request starts there
        self.assertEqual(paths(a), ["GET /v1/jobs/job-1/events"])


if __name__ == "__main__":
    unittest.main()
