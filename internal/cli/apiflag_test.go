package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/httpapi"
)

// --api takes several REST APIs, a scheme optional on each: a command goes through the
// first that serves it, and when none does, the error names each and what it did.
func TestAPIFlagTakesSeveralURLs(t *testing.T) {
	h, err := httpapi.NewHandler(httpapi.Options{Service: chainOnlyJobs{job: api.Job{ID: "job-7", Status: api.StatusSettled}}})
	if err != nil {
		t.Fatal(err)
	}
	live := httptest.NewServer(h)
	t.Cleanup(live.Close)
	dead, dead2 := httptest.NewServer(http.NotFoundHandler()), httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	dead2.Close()

	out := runOK(t, "job", "events", "job-7", "--api", strings.TrimPrefix(dead.URL, "http://")+", "+live.URL)
	if !strings.Contains(out, "the chain records it as settled") {
		t.Errorf("through the second URL: %q", out)
	}

	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), []string{"job", "events", "job-7", "--api", dead.URL + "," + dead2.URL}, &stdout, &stderr); code == 0 {
		t.Fatalf("no URL answers, yet exit 0: %s", stdout.String())
	}
	for _, want := range []string{"no OmniSync REST API in --api served the request", dead.URL + " did not answer", dead2.URL + " did not answer"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("error %q does not say %q", stderr.String(), want)
		}
	}
}
