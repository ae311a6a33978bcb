package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/explorer"
)

// The explorer is served beside the API: its pages and files with their own content types
// and a policy that allows only this origin, while /v1 and unknown paths keep answering
// in JSON, and none of its routes is in the API's description.
func TestServesTheExplorer(t *testing.T) {
	h := newTestHandler(t, newFake())
	for path, contentType := range map[string]string{
		"/":                     "text/html; charset=utf-8",
		"/jobs/job-7f3a":        "text/html; charset=utf-8",
		"/explorer/js/main.js":  "text/javascript; charset=utf-8",
		"/explorer/style.css":   "text/css; charset=utf-8",
		"/explorer/favicon.svg": "image/svg+xml",
	} {
		rec := serve(h, http.MethodGet, path, nil)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != contentType {
			t.Errorf("GET %s: %d, Content-Type %q; want 200, %q", path, rec.Code, rec.Header().Get("Content-Type"), contentType)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	for path, want := range map[string]int{"/v1/health": http.StatusOK, "/v1/nope": http.StatusNotFound, "/explorer/nope.js": http.StatusNotFound} {
		rec := serve(h, http.MethodGet, path, nil)
		if rec.Code != want || (strings.HasPrefix(path, "/v1/") && rec.Header().Get("Content-Type") != "application/json") {
			t.Errorf("GET %s: %d %q, want %d", path, rec.Code, rec.Header().Get("Content-Type"), want)
		}
	}
	doc, _ := fetchOpenAPI(t, h)
	for _, pattern := range explorer.Patterns {
		_, path, _ := strings.Cut(pattern, " ")
		path = strings.TrimSuffix(path, "{$}")
		if strings.HasPrefix(path, "/v1/") || doc.Paths[path] != nil {
			t.Errorf("explorer pattern %q is under /v1 or in openapi.json", pattern)
		}
	}
}
