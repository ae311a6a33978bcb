package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
)

func serveMultipart(h http.Handler, body []byte, contentType string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/jobs", bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	return serveRequest(h, r)
}

// A submission as multipart/form-data reaches the service as the same request as JSON.
func TestSubmitJobMultipart(t *testing.T) {
	svc := newFake()
	h := newTestHandler(t, svc)
	want := validRequest()
	body, ct, err := api.EncodeSubmitMultipart(want)
	if err != nil {
		t.Fatal(err)
	}
	if rec := serveMultipart(h, body, ct); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
	if got := svc.lastSubmit; got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("the service got %+v, want %+v", got, want)
	}
}

// A malformed multipart submission is a 400 that says what is wrong, and one over the
// body limit a 413; the service hears of neither.
func TestSubmitJobMultipartRefused(t *testing.T) {
	part := func(w *multipart.Writer, name, data string) {
		pw, _ := w.CreateFormField(name)
		fmt.Fprint(pw, data)
	}
	req := validRequest()
	head := req
	head.InputData = nil
	headJSON := string(mustJSON(t, head))
	withData := string(mustJSON(t, req))
	tests := []struct {
		name  string
		parts [][2]string
		msg   string
	}{
		{"no request part", [][2]string{{"input:a", "x"}}, `the first part must be "request"`},
		{"empty body", nil, `no "request" part`},
		{"request not JSON", [][2]string{{"request", "{"}}, "request"},
		{"request with inline data", [][2]string{{"request", withData}}, "carries input_data"},
		{"unknown part", [][2]string{{"request", headJSON}, {"file", "x"}}, `part "file": want`},
		{"nameless input", [][2]string{{"request", headJSON}, {"input:", "x"}}, `part "input:": want`},
		{"input twice", [][2]string{{"request", headJSON}, {"input:a", string(req.InputData["a"])}, {"input:a", "x"}}, `input "a" sent twice`},
		{"undeclared input", [][2]string{{"request", headJSON}, {"input:zz", "x"}}, `input_data["zz"]: not declared`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := newFake()
			h := newTestHandler(t, svc)
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			for _, p := range tc.parts {
				part(w, p[0], p[1])
			}
			w.Close()
			rec := serveMultipart(h, buf.Bytes(), w.FormDataContentType())
			if rec.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, rec), tc.msg) || svc.lastSubmit != nil {
				t.Fatalf("status %d body %s; want 400 saying %q", rec.Code, rec.Body, tc.msg)
			}
		})
	}
	t.Run("no boundary", func(t *testing.T) {
		if rec := serveMultipart(newTestHandler(t, newFake()), []byte("x"), "multipart/form-data"); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "boundary") {
			t.Fatalf("status %d body %s", rec.Code, rec.Body)
		}
	})
	t.Run("too many inputs", func(t *testing.T) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		part(w, "request", headJSON)
		for i := range api.MaxInputs + 1 {
			part(w, fmt.Sprintf("input:i%d", i), "x")
		}
		w.Close()
		if rec := serveMultipart(newTestHandler(t, newFake()), buf.Bytes(), w.FormDataContentType()); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "more than 16 inputs") {
			t.Fatalf("status %d body %s", rec.Code, rec.Body)
		}
	})
	t.Run("over the body limit", func(t *testing.T) {
		svc := newFake()
		h := newTestHandler(t, svc)
		h.limits.MaxJobBody = 1 << 10
		big := validRequest()
		big.Spec.Inputs[0].Size = 4 << 10
		big.InputData["a"] = make([]byte, 4<<10)
		big.Spec.Inputs[0].Digest = api.DigestOf(big.InputData["a"])
		body, ct, _ := api.EncodeSubmitMultipart(big)
		r := httptest.NewRequest(http.MethodPost, "/v1/jobs", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		r.ContentLength = -1 // unknown: read until the limit trips
		if rec := serveRequest(h, r); rec.Code != http.StatusRequestEntityTooLarge || svc.lastSubmit != nil {
			t.Fatalf("status %d body %s", rec.Code, rec.Body)
		}
	})
}

// errorOf is the error message of a JSON error response.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("response %q: %v", rec.Body, err)
	}
	return body.Error
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
