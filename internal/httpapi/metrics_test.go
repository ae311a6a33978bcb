package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	// Two handlers in one process: registries are per handler, so neither panics nor sees
	// the other's requests.
	h1, other := newTestHandler(t, newFake()), newTestHandler(t, newFake())
	serve(h1, http.MethodGet, "/v1/nodes", nil)
	serve(h1, http.MethodGet, "/v1/jobs/nope", nil)
	serve(h1, http.MethodGet, "/nowhere", nil)
	serve(other, http.MethodGet, "/v1/nodes", nil)

	rec := serve(h1, http.MethodGet, "/metrics", nil)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	for _, want := range []string{
		`omnisync_http_requests_total{code="200",route="GET /v1/nodes"} 1`,
		`omnisync_http_requests_total{code="404",route="GET /v1/jobs/{id}"} 1`,
		`omnisync_http_requests_total{code="404",route="unmatched"} 1`,
		`omnisync_http_request_duration_seconds_count{route="GET /v1/nodes"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
