package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestNewHandlerOptions(t *testing.T) {
	if _, err := NewHandler(Options{}); err == nil {
		t.Error("no Service: want an error")
	}
	if _, err := NewHandler(Options{Service: newFake(), PollInterval: -time.Second}); err == nil {
		t.Error("negative PollInterval: want an error")
	}
	h, err := NewHandler(Options{Service: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	if s := h.(*server); s.poll != DefaultPollInterval || s.log == nil {
		t.Errorf("defaults not applied: poll %v", s.poll)
	}
}

func TestReadRoutes(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusRunning})
	svc.nodes = []api.Node{{ID: "node-1", GPUModel: "H100", GPUs: 8, FreeGPUs: 3, Online: true}}
	c := newTestClient(t, newTestHandler(t, svc))
	ctx := context.Background()

	if _, err := c.Job(ctx, "nope"); !errors.Is(err, api.ErrNotFound) || err.Error() != `not found: job "nope"` {
		t.Errorf("unknown job: %v", err)
	}
	if job, err := c.Job(ctx, "j1"); err != nil || job.Status != api.StatusRunning {
		t.Errorf("Job: %+v, %v", job, err)
	}
	if nodes, err := c.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].FreeGPUs != 3 {
		t.Errorf("Nodes: %+v, %v", nodes, err)
	}
	if acct, err := c.Account(ctx, "omni1rich"); err != nil || acct.Balance != 42_000_000 {
		t.Errorf("Account: %+v, %v", acct, err)
	}
	if _, err := c.Account(ctx, "omni1ghost"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
	if s, err := c.Supply(ctx); err != nil || s.Pools["rewards"] != 10_000 {
		t.Errorf("Supply: %+v, %v", s, err)
	}
	if h, err := c.Health(ctx); err != nil || h["status"] != "ok" || h["chain_id"] != "omnisync-test" {
		t.Errorf("Health: %v, %v", h, err)
	}
}

func TestNodesEmptyIsArray(t *testing.T) {
	rec := serve(newTestHandler(t, newFake()), http.MethodGet, "/v1/nodes", nil)
	if got := strings.TrimSpace(rec.Body.String()); got != "[]" {
		t.Errorf("body %q, want []", got)
	}
}

func TestHealthStatusCannotBeOverridden(t *testing.T) {
	h, _ := NewHandler(Options{Service: newFake(), Info: map[string]string{"status": "degraded", "chain_rpc": "http://x"}})
	var got map[string]string
	_ = json.Unmarshal(serve(h, http.MethodGet, "/v1/health", nil).Body.Bytes(), &got)
	if got["status"] != "ok" || got["chain_rpc"] != "http://x" {
		t.Errorf("health %v", got)
	}
}

// What changes (a router's lease, its cluster peers) is read at every request.
func TestHealthShowsLiveFields(t *testing.T) {
	lease := "held"
	h, _ := NewHandler(Options{Service: newFake(), Live: func() map[string]string { return map[string]string{"lease": lease, "status": "x"} }})
	for _, want := range []string{"held", "not renewed"} {
		lease = want
		var got map[string]string
		_ = json.Unmarshal(serve(h, http.MethodGet, "/v1/health", nil).Body.Bytes(), &got)
		if got["lease"] != want || got["status"] != "ok" {
			t.Errorf("health %v, want lease %q and status ok", got, want)
		}
	}
}

func TestUnroutedRequestsGetJSONErrors(t *testing.T) {
	h := newTestHandler(t, newFake())
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/v2/jobs", http.StatusNotFound, ""},
		{http.MethodPatch, "/v1/jobs", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodDelete, "/v1/jobs/j1", http.StatusMethodNotAllowed, "GET, HEAD"},
	}
	for _, tt := range tests {
		rec := serve(h, tt.method, tt.path, nil)
		var e api.Error
		if rec.Code != tt.status || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %q", tt.method, tt.path, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

func TestPanicBecomes500(t *testing.T) {
	svc := newFake()
	svc.panicNodes = true
	var logs bytes.Buffer
	h, _ := NewHandler(Options{Service: svc, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rec := serve(h, http.MethodGet, "/v1/nodes", nil)
	var e api.Error
	if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code != api.CodeInternal {
		t.Fatalf("status %d body %q", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "exploded") {
		t.Error("panic value leaked to the client")
	}
	if !strings.Contains(logs.String(), "exploded") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	if rec := serve(h, http.MethodGet, "/v1/health", nil); rec.Code != 200 {
		t.Errorf("after a panic: %d", rec.Code)
	}
}

func TestRequestsAreLoggedAtDebug(t *testing.T) {
	var logs bytes.Buffer
	h, _ := NewHandler(Options{Service: newFake(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	serve(h, http.MethodGet, "/v1/jobs/nope", nil)
	line := logs.String()
	for _, want := range []string{"level=DEBUG", `route="GET /v1/jobs/{id}"`, "status=404", "path=/v1/jobs/nope"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %s", line, want)
		}
	}
}

func TestJobGolden(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	svc := newFake()
	svc.put(api.Job{
		ID: "job-7f3a", Consumer: "omni1qz8consumer", Status: api.StatusSettled, Node: "node-h100-eu",
		Scores:       &api.Scores{Compute: 9100, Latency: 8000, Reliability: 9900, Price: 7000, Total: 8650},
		ResultDigest: "sha256:" + strings.Repeat("ab", 32), Verified: true, Verdict: "freivalds: 20 rounds passed",
		Payment: &api.Payment{Budget: 5_000_000, Cost: 1_200_000, PaidToNode: 1_152_000, Burned: 24_000,
			ProtocolFee: 24_000, Refunded: 3_800_000, BilledMillis: 2160},
		Txs:      map[string]string{"create": "A1B2", "settle": "C3D4"},
		Attempts: 1,
		Events: []api.Event{
			{Time: at, Stage: "queued", Message: "accepted"},
			{Time: at.Add(2 * time.Second), Stage: "settled", Message: "paid node-h100-eu"},
		},
	})
	rec := serve(newTestHandler(t, svc), http.MethodGet, "/v1/jobs/job-7f3a", nil)
	var got bytes.Buffer
	if err := json.Indent(&got, rec.Body.Bytes(), "", "  "); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	got.WriteByte('\n')
	golden := filepath.Join("testdata", "job.json")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("GET /v1/jobs/{id} body differs from %s (go test -update rewrites it):\n%s", golden, got.Bytes())
	}
}
