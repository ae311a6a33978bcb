package httpapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func fetchOpenAPI(t *testing.T, h http.Handler) (openAPIDoc, []byte) {
	t.Helper()
	rec := serve(h, http.MethodGet, "/v1/openapi.json", nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	return doc, rec.Body.Bytes()
}

// The document describes exactly the routes the mux serves.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	h := newTestHandler(t, newFake())
	doc, _ := fetchOpenAPI(t, h)

	for _, rt := range h.routeTable() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %q is not in openapi.json", rt.pattern)
		}
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range doc.Paths {
		for method := range item {
			if !slices.Contains(httpMethods, method) {
				continue // summary, parameters, …
			}
			pattern := strings.ToUpper(method) + " " + path
			r := httptest.NewRequest(strings.ToUpper(method), param.ReplaceAllString(path, "x"), nil)
			if _, got := h.mux.Handler(r); got != pattern {
				t.Errorf("openapi.json describes %s but the mux routes it to %q", pattern, got)
			}
		}
	}
}

// Every operation that takes a body documents what reading any body can answer (too slow,
// too large, the wrong type, no room in the body budget); the output download documents
// its authentication.
func TestOpenAPIDocumentsBodyAndAuthResponses(t *testing.T) {
	_, raw := fetchOpenAPI(t, newTestHandler(t, newFake()))
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody json.RawMessage            `json:"requestBody"`
			Responses   map[string]json.RawMessage `json:"responses"`
			Security    []map[string][]string      `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	withBody := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			if op.RequestBody == nil {
				continue
			}
			withBody++
			for _, status := range []string{"408", "413", "415", "503"} {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("%s %s takes a body but does not document %s", method, path, status)
				}
			}
		}
	}
	if withBody != 3 {
		t.Errorf("%d operations take a body, want 3 (jobs, input upload, txs)", withBody)
	}
	out := doc.Paths["/v1/jobs/{id}/output"]["get"]
	if _, ok := out.Responses["401"]; !ok || len(out.Security) != 1 || out.Security[0]["OmniSig"] == nil {
		t.Errorf("output download: responses %v, security %v", slices.Sorted(maps.Keys(out.Responses)), out.Security)
	}
}

// Every schema named after a wire type lists exactly that type's JSON fields.
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	doc, _ := fetchOpenAPI(t, newTestHandler(t, newFake()))
	types := []any{api.SubmitJobRequest{}, api.JobSpec{}, api.Workload{}, api.Input{}, api.Resources{},
		api.Placement{}, api.Job{}, api.Scores{}, api.Payment{}, api.Event{}, api.Node{}, api.Account{},
		api.Supply{}, api.Error{},
		// the chain mirrors
		api.ChainAccount{}, api.Vesting{}, api.Params{}, api.RouterWeights{}, api.Validator{},
		api.Spend{}, api.Proposal{}, api.Unbonding{}, api.BroadcastTxRequest{}, api.BroadcastTxResponse{},
		api.NodeHistory{}, api.NodeRecord{}, api.NodeHistoryEntry{}, api.RewardWindow{}}
	for _, v := range types {
		typ := reflect.TypeOf(v)
		schema, ok := doc.Components.Schemas[typ.Name()]
		if !ok {
			t.Errorf("no schema %s", typ.Name())
			continue
		}
		var want []string
		for f := range typ.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				want = append(want, name)
			}
		}
		got := slices.Sorted(maps.Keys(schema.Properties))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has properties %v, type has JSON fields %v", typ.Name(), got, want)
		}
	}
}

// Every $ref points at something the document defines.
func TestOpenAPIRefsResolve(t *testing.T) {
	_, raw := fetchOpenAPI(t, newTestHandler(t, newFake()))
	var root any
	_ = json.Unmarshal(raw, &root)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if ref, ok := child.(string); k == "$ref" && ok {
					if resolve(root, ref) == nil {
						t.Errorf("$ref %q does not resolve", ref)
					}
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(root)
}

func resolve(root any, ref string) any {
	node := root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = m[part]
	}
	return node
}
