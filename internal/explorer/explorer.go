package explorer

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// Patterns are the http.ServeMux patterns to mount Handler on: the explorer's pages
// (routed in the browser, each served the same index) and its assets under /explorer/.
// None of them is under /v1, so the API's routes are unaffected.
var Patterns = []string{
	"GET /{$}",
	"GET /jobs/{id}",
	"GET /nodes/{id}",
	"GET /accounts/{address}",
	"GET " + APIDocsPath,
	"GET " + AssetPrefix,
}

// APIDocsPath is the page that renders the API's OpenAPI document (/v1/openapi.json)
// readably: its operations by tag, their parameters, bodies, responses and schemas.
const APIDocsPath = "/docs/api"

// AssetPrefix is where the explorer's files are served.
const AssetPrefix = "/explorer/"

// ContentSecurityPolicy lets a page load scripts, styles, images and API responses from
// its own origin only: no inline code, no other host, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes are set by extension here rather than by the mime package, whose table
// depends on the host's mime.types (module scripts must be served as JavaScript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

type handler struct {
	index  asset
	assets map[string]asset // by path under AssetPrefix
}

// Handler serves the explorer: the index page at / and at each page path in Patterns,
// and the embedded files under AssetPrefix. Anything else is 404. Every call returns the
// same handler: the files are read once.
func Handler() http.Handler { return shared() }

var shared = sync.OnceValue(func() http.Handler {
	h := &handler{assets: map[string]asset{}}
	root, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, contentType: contentTypes[path.Ext(p)], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		if p == "index.html" {
			h.index = a
		} else {
			h.assets[p] = a
		}
		return nil
	})
	if err != nil || h.index.body == nil {
		panic("explorer: embedded files unreadable") // a broken build, not a runtime condition
	}
	return h
})

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := h.index
	if name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix); ok {
		if a, ok = h.assets[name]; !ok {
			http.NotFound(w, r)
			return
		}
	} else if !isPage(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	// Revalidate every time: the files change with the binary, and a 304 costs little.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// isPage reports whether p is one of the pages the browser routes: / and APIDocsPath, or
// /jobs/{id}, /nodes/{id} or /accounts/{address} with one non-empty segment.
func isPage(p string) bool {
	if p == "/" || p == APIDocsPath {
		return true
	}
	for _, prefix := range []string{"/jobs/", "/nodes/", "/accounts/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return rest != "" && !strings.Contains(rest, "/")
		}
	}
	return false
}
