package cli

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/httpapi"
)

// chainOnlyJobs answers GET /v1/jobs/{id} as a router that has forgotten the job does:
// the chain's record, without a timeline.
type chainOnlyJobs struct {
	httpapi.Service
	job api.Job
}

func (c chainOnlyJobs) Job(context.Context, string) (api.Job, error) { return c.job, nil }

// `job events` for a job the router has forgotten says so and prints the chain's record,
// instead of nothing.
func TestJobEventsFallsBackToTheChainRecord(t *testing.T) {
	job := api.Job{ID: "job-7", Status: api.StatusSettled, Verified: true, Node: testAddr(4),
		Payment: &api.Payment{PaidToNode: 46_500, Refunded: 950_000}}
	h, err := httpapi.NewHandler(httpapi.Options{Service: chainOnlyJobs{job: job}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Setenv(envAPIURL, srv.URL)
	for _, args := range [][]string{{"job", "events", "job-7"}, {"job", "events", "-f", "job-7"}} {
		out := runOK(t, args...)
		for _, want := range []string{"No events for job job-7", "no longer holds its timeline", "the chain records it as settled (final)",
			"on node " + testAddr(4), "0.0465 OMNI paid to the node", "omnisync job status job-7"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v printed %q, want %q", args, out, want)
			}
		}
	}
	if out := runOK(t, "job", "events", "job-7", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("json: %q, want an empty list", out)
	}
}
