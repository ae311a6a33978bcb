package explorer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/explorer"
)

// Replica nodes and digests of the fake redundant jobs.
const (
	nodeA, nodeB, nodeC = "AM8of1MrGLTut7bJKNqEAiqsXJdbiYgeVD1JeWgpdeCE", "BN9pg2NsHMUuv8cKLOrFBjrtYKecjZhfWE2KfXhqefDF", "CP1qh3PtJNVvw9dLMPsGCksuZLfdkaigXF3LgYirfgEG"
	agreed              = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	other               = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// fakeAPI serves the explorer with a few fixed API answers: a chain node's, where
// /v1/chain/blocks and /v1/stats answer 503, and two redundant jobs, one settled (a replica
// agreed and was paid, one agreed too late to be paid, one was outvoted) and one whose
// replicas have all sealed but not revealed. Other /v1 routes answer 404.
func fakeAPI(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for _, p := range explorer.Patterns {
		mux.Handle(p, explorer.Handler())
	}
	answer := func(pattern string, status int, v any) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(v)
		})
	}
	unavailable := api.Error{Error: "unavailable: this server reads no blocks", Code: api.CodeUnavailable}
	answer("GET /v1/health", http.StatusOK, map[string]string{"chain_id": "fake-1", "role": "chain"})
	answer("GET /v1/nodes", http.StatusOK, []api.Node{})
	answer("GET /v1/chain/blocks", http.StatusServiceUnavailable, unavailable)
	answer("GET /v1/stats", http.StatusServiceUnavailable, api.Error{Error: "unavailable: not a router", Code: api.CodeUnavailable})
	answer("GET /v1/jobs/job-settled", http.StatusOK, api.Job{
		ID: "job-settled", Status: api.StatusSettled, Kind: api.WorkloadContainer, Verification: api.VerifyRedundant,
		ResultDigest: agreed, Verified: true, Node: nodeA,
		Payment: &api.Payment{Budget: 9_000_000, Cost: 3_000_000, PaidToNode: 2_500_000, Burned: 300_000, ProtocolFee: 200_000, Refunded: 6_000_000},
		Replicas: []api.Replica{
			{Node: nodeA, ResultDigest: agreed, Paid: 1_250_000},
			{Node: nodeB, ResultDigest: agreed},
			{Node: nodeC, ResultDigest: other},
		},
	})
	answer("GET /v1/jobs/job-sealed", http.StatusOK, api.Job{
		ID: "job-sealed", Status: api.StatusComputed, Kind: api.WorkloadContainer, Verification: api.VerifyRedundant,
		Replicas: []api.Replica{{Node: nodeA}, {Node: nodeB}, {Node: nodeC}},
		Events: []api.Event{
			{Time: time.Now().Add(-time.Second), Stage: "escrowed", Message: "escrowed"},
			{Time: time.Now(), Stage: "revealing", Message: "all 3 replicas sealed their results"},
		},
	})
	answer("/v1/", http.StatusNotFound, api.Error{Error: "not found", Code: "not_found"})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// Against a chain node's API (no blocks, no router stats), the network page says briefly
// what is missing and why; a redundant job's page shows each replica's digest, payment and
// whether it agreed.
func TestExplorerPagesOnFakeAPIInChromium(t *testing.T) {
	b := newBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := fakeAPI(t).URL

	t.Run("network without blocks or stats", func(t *testing.T) {
		dom := b.dumpDOM(ctx, t, base+"/")
		requireAll(t, dom, `data-ready="true"`, "fake-1",
			"Recent blocks and transactions: </strong>this server reads no chain RPC",
			"Jobs per minute and placement latency: </strong>only a router reports them")
		for _, gone := range []string{"Settled per minute", "Recent transactions"} {
			if strings.Contains(dom, gone) {
				t.Errorf("the page shows %q without the route that gives it", gone)
			}
		}
	})
	t.Run("settled redundant job", func(t *testing.T) {
		dom := b.dumpDOM(ctx, t, base+"/jobs/job-settled")
		requireAll(t, dom, `data-ready="true"`, "<dt>Kind</dt><dd>container<", "redundant", "3 replicas", "<h3>Replicas</h3>",
			`href="/nodes/`+nodeA+`"`, `href="/nodes/`+nodeB+`"`, `href="/nodes/`+nodeC+`"`,
			`title="`+agreed+`"`, `title="`+other+`"`, "1.25 OMNI",
			`class="badge b-agreed">agreed<`, `class="badge b-unpaid">not paid<`, `class="badge b-outvoted">outvoted<`)
		if n := strings.Count(dom, `b-agreed">agreed<`); n != 1 {
			t.Errorf("%d replicas agreed and were paid, want 1", n)
		}
	})
	t.Run("sealed redundant job", func(t *testing.T) {
		dom := b.dumpDOM(ctx, t, base+"/jobs/job-sealed")
		requireAll(t, dom, `data-ready="true"`, "<h3>Replicas</h3>", "sealed, not revealed yet")
		if n := strings.Count(dom, "sealed, not revealed yet"); n != 3 {
			t.Errorf("%d replicas sealed and not revealed, want 3", n)
		}
		for _, badge := range []string{"b-agreed", "b-outvoted", "b-unpaid"} {
			if strings.Contains(dom, badge) {
				t.Errorf("a replica has %s before the chain decided", badge)
			}
		}
	})
}
