"""429 Too Many Requests: typed, retryable, and sent again after its Retry-After."""

from __future__ import annotations

import unittest
from typing import List

import support  # noqa: F401  (puts the SDK on sys.path)
from test_client import FakeServer, Handler, js, job

from omnisync import BadRequest, Client, TooManyRequests, Unavailable


class TooManyRequestsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.srv = FakeServer()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.c = Client(self.srv.url)
        self.slept: List[float] = []
        self.c._t.sleep = self.slept.append  # no real waiting

    def busy_then(self, times: int):
        calls = []

        def route(h: Handler):
            calls.append(h.body)
            if len(calls) <= times:
                return js(429, {"error": "too many pending transactions: 64 from x", "code": "too_many_requests"}, **{"Retry-After": "2"})
            return js(200, job("settled"))

        return route, calls

    def test_retried_after_retry_after(self) -> None:
        route, calls = self.busy_then(2)
        self.srv.routes["GET /v1/jobs/job-1"] = route
        self.assertEqual(self.c.get("job-1").status, "settled")
        self.assertEqual(len(calls), 3)
        self.assertEqual(self.slept, [2.0, 2.0])

    def test_gives_up_with_a_typed_retryable_error(self) -> None:
        route, calls = self.busy_then(100)
        self.srv.routes["GET /v1/jobs/job-1"] = route
        with self.assertRaises(TooManyRequests) as cm:
            self.c.get("job-1")
        e = cm.exception
        self.assertEqual((e.status, e.code, e.retry_after, e.retryable), (429, "too_many_requests", 2.0, True))
        self.assertEqual(len(calls), 1 + self.c._t.retries_429)

    def test_other_errors_are_not_retried(self) -> None:
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(400, {"error": "bad", "code": "bad_request"})
        with self.assertRaises(BadRequest) as cm:
            self.c.get("job-1")
        self.assertFalse(cm.exception.retryable)
        self.assertEqual(self.slept, [])
        self.srv.routes["GET /v1/jobs/job-1"] = lambda h: js(503, {"error": "busy", "code": "unavailable"}, **{"Retry-After": "1"})
        with self.assertRaises(Unavailable) as cm:
            self.c.get("job-1")
        self.assertTrue(cm.exception.retryable)
        self.assertEqual(cm.exception.retry_after, 1.0)


if __name__ == "__main__":
    unittest.main()
