package router

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Both the router and a chain node's service answer the whole REST API.
var (
	_ httpapi.Service = (*Router)(nil)
	_ httpapi.Service = ChainService{}
)

func TestChainServiceAnswersChainViewsAndSendsJobsToARouter(t *testing.T) {
	f := newFakeChain()
	n1, n2 := keys.AddressOfKey(newKey(t)), keys.AddressOfKey(newKey(t))
	f.addNode(n1, 900_000, 35_600)
	f.addNode(n2, 1_800_000, 82_600)
	consumer := keys.AddressOfKey(newKey(t))
	f.jobs["job-1"] = &ledger.Job{ID: "job-1", Consumer: consumer, Node: n1, Status: ledger.JobSettled, ResultDigest: "sha256:ab",
		Budget: 100, Settlement: &ledger.Settlement{Cost: 40, Paid: 38, Burned: 1, Fee: 1, Refunded: 60}}
	f.jobs["job-2"] = &ledger.Job{ID: "job-2", Consumer: consumer, Status: ledger.JobSettled, ResultDigest: "sha256:cd", Budget: 100,
		Replicas: []ledger.Replica{{Node: n1, ResultDigest: "sha256:cd"}, {Node: n2, ResultDigest: "sha256:ef"}},
		Settlement: &ledger.Settlement{Cost: 20, Paid: 19, Burned: 1, Refunded: 80, Reward: 7,
			Shares: []ledger.Share{{Node: n1, Cost: 20, Paid: 19, Burned: 1, Reward: 7}}}}
	svc := ChainService{ChainViews{Chain: f}}
	ctx := context.Background()

	// A replica's payment out of the budget and its reward from the pool are told apart.
	if job, err := svc.Job(ctx, "job-2"); err != nil || len(job.Replicas) != 2 ||
		job.Replicas[0] != (api.Replica{Node: string(n1), ResultDigest: "sha256:cd", Paid: 19, Reward: 7}) ||
		job.Replicas[1] != (api.Replica{Node: string(n2), ResultDigest: "sha256:ef"}) || job.Payment.NetworkReward != 7 {
		t.Errorf("Job(redundant) = %+v, %v", job, err)
	}

	nodes, err := svc.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes = %v, %v; want both registered nodes", nodes, err)
	}
	if nodes[0].ID > nodes[1].ID || nodes[0].Online || nodes[1].Online {
		t.Errorf("Nodes = %+v; want id order, all offline (a chain node hears no heartbeats)", nodes)
	}
	job, err := svc.Job(ctx, "job-1")
	if err != nil || job.Status != api.StatusSettled || !job.Verified || job.Payment == nil || job.Payment.PaidToNode != 38 {
		t.Errorf("Job = %+v, %v; want the settled chain record with its payment", job, err)
	}
	if _, err := svc.Job(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Job(unknown) = %v, want api.ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"SubmitJob":   second(svc.SubmitJob(ctx, api.SubmitJobRequest{})),
		"UploadInput": svc.UploadInput(ctx, "job-1", "a", strings.NewReader("x")),
		"JobOutput":   second(svc.JobOutput(ctx, "job-1", api.OutputAuth{})),
	} {
		if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "submit jobs to a router's REST API") {
			t.Errorf("%s = %v; want api.ErrUnavailable saying where jobs go", name, err)
		}
	}

	// Over HTTP: chain views answer, job intake is a 503 whose message says where to go.
	h, err := httpapi.NewHandler(httpapi.Options{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := api.NewClient(srv.URL)
	if got, err := c.Nodes(ctx); err != nil || len(got) != 2 {
		t.Errorf("GET /v1/nodes = %v, %v", got, err)
	}
	err = c.UploadInput(ctx, "job-1", "a", strings.NewReader("x"), 1)
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "router") {
		t.Errorf("PUT /v1/jobs/job-1/inputs/a = %v; want 503 saying jobs go to a router", err)
	}
}

func second[T any](_ T, err error) error { return err }
