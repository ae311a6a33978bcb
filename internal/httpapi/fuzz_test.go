package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/omnisync/omnisync/api"
)

// FuzzSubmitJobBody: whatever the body, POST /v1/jobs never panics and answers 202 only for
// a request that passes every check, a 4xx with a JSON api.Error otherwise.
func FuzzSubmitJobBody(f *testing.F) {
	valid, _ := json.Marshal(validRequest())
	for _, seed := range []string{
		string(valid), "", "{}", "null", "[]", `{"spec":{"inputs":[{"size":-1}]}}`,
		`{"spec":{"budget":1e99}}`, `{"tx":"!!"}`, `{"input_data":{"a":null}}`, "\xff\xfe", `{"spec":`,
	} {
		f.Add([]byte(seed))
	}
	h, err := NewHandler(Options{Service: newFake()})
	if err != nil {
		f.Fatal(err)
	}
	s := h.(*server)
	s.limits.MaxJobBody = 1 << 20
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(s, http.MethodPost, "/v1/jobs", body)
		switch {
		case rec.Code == http.StatusAccepted:
			var req api.SubmitJobRequest
			if err := json.Unmarshal(body, &req); err != nil || checkSubmit(req) != nil {
				t.Fatalf("accepted a bad request %q", body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("status %d with body %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
