package router

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
)

// A job's event stream hears what the router records at once, from the router itself:
// with the poll interval an hour, a new event reaches the client within milliseconds.
func TestJobEventsArePushedFromTheRouter(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	scriptedNode(t, r, roots, key, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Accepted: true} }) // and never reports
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	id := submit(t, r, chain)
	waitFor(t, "the job running", func() bool { return jobHas(r, id, "running") })

	h, err := httpapi.NewHandler(httpapi.Options{Service: r, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/jobs/"+id+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	events := bufio.NewReader(resp.Body)
	if job := nextJobEvent(t, events); job.Status != api.StatusRunning {
		t.Fatalf("the stream opened with the job %s, want running", job.Status)
	}

	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	for i := range 3 {
		start := time.Now()
		j.record("progress", "", "", "step %d", i)
		job := nextJobEvent(t, events)
		took := time.Since(start)
		if last := job.Events[len(job.Events)-1]; last.Message != fmt.Sprintf("step %d", i) {
			t.Fatalf("the stream's latest event is %q, want step %d", last.Message, i)
		}
		t.Logf("step %d reached the stream in %s", i, took)
		if took > time.Second {
			t.Fatalf("step %d took %s to reach the stream", i, took)
		}
	}
}

// nextJobEvent reads the stream's next job event.
func nextJobEvent(t *testing.T, br *bufio.Reader) api.Job {
	t.Helper()
	var name, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" && data != "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
	}
	var job api.Job
	if name != api.EventJob || json.Unmarshal([]byte(data), &job) != nil {
		t.Fatalf("event %s %s, want a job", name, data)
	}
	return job
}
