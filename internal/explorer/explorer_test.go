package explorer

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestServesPagesAndAssets(t *testing.T) {
	h := Handler()
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/explorer/js/main.js">`},
		{"/jobs/job-0123456789abcdef", "text/html; charset=utf-8", "<main"},
		{"/nodes/AM8of1MrGLTut7bJKNqEAiqsXJdbiYgeVD1JeWgpdeCE", "text/html; charset=utf-8", "<main"},
		{"/accounts/AM8of1MrGLTut7bJKNqEAiqsXJdbiYgeVD1JeWgpdeCE", "text/html; charset=utf-8", "<main"},
		{APIDocsPath, "text/html; charset=utf-8", `href="/docs/api"`},
		{"/explorer/js/apidoc.js", "text/javascript; charset=utf-8", "/v1/openapi.json"},
		{"/explorer/style.css", "text/css; charset=utf-8", ":root"},
		{"/explorer/js/main.js", "text/javascript; charset=utf-8", "import"},
		{"/explorer/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		rec := get(t, h, http.MethodGet, tt.path)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != tt.contentType {
			t.Errorf("GET %s: %d, Content-Type %q; want 200, %q", tt.path, rec.Code, rec.Header().Get("Content-Type"), tt.contentType)
		}
		if !strings.Contains(rec.Body.String(), tt.contains) {
			t.Errorf("GET %s: body lacks %q", tt.path, tt.contains)
		}
		if got := rec.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q", tt.path, got)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tt.path)
		}
	}
	for _, path := range []string{"/explorer/nope.js", "/explorer/", "/jobs/", "/jobs/a/b", "/v1/health", "/other", "/docs", "/docs/", "/docs/api/", "/docs/api/x"} {
		if rec := get(t, h, http.MethodGet, path); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
	if rec := get(t, h, http.MethodPost, "/"); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// Mounted on a ServeMux by Patterns, as the REST server mounts it, every page and asset is
// served with the policy, the API reference included.
func TestPatternsServeEveryPage(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range Patterns {
		mux.Handle(p, Handler())
	}
	for _, path := range []string{"/", "/jobs/job-1", "/nodes/n", "/accounts/a", APIDocsPath, "/explorer/js/apidoc.js"} {
		rec := get(t, mux, http.MethodGet, path)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("GET %s through Patterns: %d, Content-Security-Policy %q", path, rec.Code, rec.Header().Get("Content-Security-Policy"))
		}
	}
	if rec := get(t, mux, http.MethodGet, APIDocsPath+"/more"); rec.Code != http.StatusNotFound {
		t.Errorf("GET %s/more: %d, want 404", APIDocsPath, rec.Code)
	}
}

// The policy names no source but the page's own origin ('none' forbids outright).
func TestContentSecurityPolicyAllowsOnlySelf(t *testing.T) {
	seen := map[string]bool{}
	for _, directive := range strings.Split(ContentSecurityPolicy, ";") {
		fields := strings.Fields(directive)
		if len(fields) < 2 {
			t.Fatalf("directive %q has no sources", directive)
		}
		seen[fields[0]] = true
		for _, src := range fields[1:] {
			if src != "'self'" && src != "'none'" {
				t.Errorf("%s allows %s", fields[0], src)
			}
		}
	}
	for _, d := range []string{"default-src", "script-src", "style-src", "connect-src", "frame-ancestors", "base-uri"} {
		if !seen[d] {
			t.Errorf("no %s directive", d)
		}
	}
}

func TestRevalidatesWithETag(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/explorer/js/main.js")
	etag := first.Header().Get("ETag")
	if etag == "" || first.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, first.Header().Get("Cache-Control"))
	}
	if rec := get(t, h, http.MethodGet, "/explorer/js/main.js", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", rec.Code)
	}
}

// Every file the page or a module names is embedded, so nothing is fetched from elsewhere.
func TestEveryReferenceIsEmbedded(t *testing.T) {
	root, _ := fs.Sub(static, "static")
	exists := func(p string) bool { _, err := fs.Stat(root, p); return err == nil }
	index, _ := fs.ReadFile(root, "index.html")
	refs := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(string(index), -1)
	for _, m := range refs {
		if name, ok := strings.CutPrefix(m[1], AssetPrefix); ok && !exists(name) {
			t.Errorf("index.html names %s, which is not embedded", m[1])
		}
	}
	css, _ := fs.ReadFile(root, "style.css")
	if m := regexp.MustCompile(`@import|url\(`).FindString(string(css)); m != "" {
		t.Errorf("style.css loads something (%s)", m)
	}
	external := regexp.MustCompile(`https?://[^'"\s]+`)
	imports := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^'"]*from\s+'([^']+)'|^import\s+'([^']+)'`)
	modules, _ := fs.Glob(root, "js/*.js")
	if len(modules) == 0 {
		t.Fatal("no modules embedded")
	}
	for _, mod := range modules {
		src, _ := fs.ReadFile(root, mod)
		if m := external.FindString(strings.ReplaceAll(string(src), "http://www.w3.org/2000/svg", "")); m != "" {
			t.Errorf("%s names an outside address %q", mod, m)
		}
		for _, m := range imports.FindAllStringSubmatch(string(src), -1) {
			target := m[1] + m[2]
			if !strings.HasPrefix(target, "./") || !exists("js/"+strings.TrimPrefix(target, "./")) {
				t.Errorf("%s imports %q: not an embedded module", mod, target)
			}
		}
	}
}

// Every API path a module reads is one the API's OpenAPI document describes, with the
// query parameters it declares: the pages ask for nothing the REST servers do not serve.
func TestModulesReadDocumentedRoutes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "httpapi", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	root, _ := fs.Sub(static, "static")
	modules, _ := fs.Glob(root, "js/*.js")
	literal := regexp.MustCompile("['`](/v1/[^'`]*)['`]")
	seen := map[string]bool{}
	for _, mod := range modules {
		src, _ := fs.ReadFile(root, mod)
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			p, query, _ := strings.Cut(m[1], "?")
			p = regexp.MustCompile(`\$\{[^}]*\}`).ReplaceAllString(p, "{}")
			op, ok := documented(doc.Paths, p)
			if !ok {
				t.Errorf("%s reads %s, which the OpenAPI document does not describe", mod, m[1])
				continue
			}
			seen[p] = true
			for _, kv := range strings.Split(query, "&") {
				name, _, _ := strings.Cut(kv, "=")
				if name == "" {
					continue
				}
				declared := false
				for _, prm := range op.Parameters {
					declared = declared || prm.In == "query" && prm.Name == name
				}
				if !declared {
					t.Errorf("%s reads %s with ?%s, which GET %s does not declare", mod, m[1], name, p)
				}
			}
		}
	}
	// The network page reads the latest blocks and the router's stats.
	for _, p := range []string{"/v1/chain/blocks", "/v1/stats"} {
		if !seen[p] {
			t.Errorf("no module reads %s", p)
		}
	}
}

// documented finds the GET operation of the OpenAPI path matching p, where p has {} in
// place of each value and the document names its parameters ({id}).
func documented[Op any](paths map[string]map[string]Op, p string) (Op, bool) {
	for tmpl, ops := range paths {
		pattern := "^" + regexp.MustCompile(`\\\{[^}]*\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `(\{\}|[^/]+)`) + "$"
		if regexp.MustCompile(pattern).MatchString(p) {
			op, ok := ops["get"]
			return op, ok
		}
	}
	var zero Op
	return zero, false
}
