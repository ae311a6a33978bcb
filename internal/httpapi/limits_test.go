package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// startServer serves svc with NewServer and limits on a loopback port and returns its
// address and handler.
func startServer(t *testing.T, svc Service, limits Limits) (addr string, s *server) {
	t.Helper()
	srv, err := NewServer(Options{Service: svc, PollInterval: time.Millisecond, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), srv.Handler.(*server)
}

// free is how much of the body budget is not reserved.
func (b *budget) available() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.free
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// awaitingJob is a job whose input "big" (size bytes of 'x') is still to be uploaded.
func awaitingJob(svc *fakeService, id string, size int) []byte {
	data := bytes.Repeat([]byte("x"), size)
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.jobs[id] = api.Job{ID: id, Consumer: fakeConsumer, Status: api.StatusAwaitingInputs}
	svc.specs[id] = api.JobSpec{Inputs: []api.Input{{Name: "big", Digest: api.DigestOf(data), Size: int64(size)}}}
	svc.inputs[id] = map[string][]byte{}
	return data
}

func TestLimitsDefaultsAndChecks(t *testing.T) {
	srv, err := NewServer(Options{Service: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 20*time.Second || srv.WriteTimeout != time.Minute ||
		srv.IdleTimeout != 2*time.Minute || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("server timeouts %v %v %v %v %d", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if l := srv.Handler.(*server).limits; l.BodyBudget != 64<<20 || l.MaxJobBody != 16<<20 || l.MinBodyRate != 32<<10 {
		t.Errorf("limits %+v", l)
	}
	for _, bad := range []Limits{
		{BodyBudget: 1 << 20}, // below the 16 MiB job body it must hold
		{WriteTimeout: -time.Second},
		{MinBodyRate: -1},
	} {
		if _, err := NewServer(Options{Service: newFake(), Limits: bad}); err == nil {
			t.Errorf("limits %+v accepted", bad)
		}
	}
}

// Finding 5 (issue #8): connections that sent headers and no body stayed open. Now a client
// that stops sending, or drips too slowly, is dropped within the idle timeout.
func TestAttackSlowLorisIsDropped(t *testing.T) {
	svc := newFake()
	awaitingJob(svc, "j-up", 4096)
	addr, _ := startServer(t, svc, Limits{
		ReadHeaderTimeout: 300 * time.Millisecond, BodyIdleTimeout: 300 * time.Millisecond,
		MinBodyRate: 1 << 10, WriteTimeout: 2 * time.Second,
	})
	tests := []struct {
		name string
		head string // sent at once
		drip bool   // then one byte every 50 ms, a little under 1 KiB/s, until the server hangs up
		want string // the status the server answers before hanging up; "" for none
	}{
		{"headers unfinished", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", false, ""},
		{"json headers and no body", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", false, "408"},
		{"upload headers and no body", "PUT /v1/jobs/j-up/inputs/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n", false, "408"},
		{"chunked upload and no chunk", "PUT /v1/jobs/j-up/inputs/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n", false, "408"},
		{"json body dripped", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", true, "408"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tt.head); err != nil {
				t.Fatal(err)
			}
			if tt.drip {
				go func() {
					for {
						time.Sleep(50 * time.Millisecond)
						if _, err := conn.Write([]byte(" ")); err != nil {
							return
						}
					}
				}()
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(conn)
			elapsed := time.Since(start)
			if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("connection still open after %v: %v", elapsed, err)
			}
			if elapsed > 2*time.Second {
				t.Errorf("dropped after %v, want within about 300 ms", elapsed)
			}
			if tt.want != "" && !strings.HasPrefix(string(got), "HTTP/1.1 "+tt.want) {
				t.Errorf("answered %q, want %s", got, tt.want)
			}
		})
	}
}

// An upload that keeps arriving is never cut, though it lasts longer than the idle timeout,
// the server's ReadTimeout and its WriteTimeout together; its answer still gets through.
func TestSteadyUploadOutlivesTimeouts(t *testing.T) {
	svc := newFake()
	data := awaitingJob(svc, "j-up", 12<<10)
	addr, _ := startServer(t, svc, Limits{
		ReadHeaderTimeout: 200 * time.Millisecond, BodyIdleTimeout: 200 * time.Millisecond,
		MinBodyRate: 1 << 10, WriteTimeout: 300 * time.Millisecond,
	})
	pr, pw := io.Pipe()
	go func() {
		for chunk := range slicesChunk(data, 1<<10) { // 12 × 1 KiB, 100 ms apart: 1.2 s
			time.Sleep(100 * time.Millisecond)
			pw.Write(chunk)
		}
		pw.Close()
	}()
	start := time.Now()
	if err := api.NewClient("http://"+addr).UploadInput(context.Background(), "j-up", "big", pr, int64(len(data))); err != nil {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if !bytes.Equal(svc.inputs["j-up"]["big"], data) {
		t.Error("stored input differs")
	}
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// An event stream outlives the server's read and write timeouts: it ends only with the job.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusQueued})
	addr, _ := startServer(t, svc, Limits{ReadHeaderTimeout: 100 * time.Millisecond, BodyIdleTimeout: 100 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond})
	resp := openEvents(t, t.Context(), "http://"+addr+"/v1/jobs/j1/events")
	br := bufio.NewReader(resp.Body)
	if _, data, err := readEvent(br); err != nil || !strings.Contains(data, `"queued"`) {
		t.Fatalf("first event %q, %v", data, err)
	}
	time.Sleep(600 * time.Millisecond) // past ReadTimeout (200 ms) and WriteTimeout, with nothing to send
	svc.setStatus("j1", api.StatusSettled)
	if _, data, err := readEvent(br); err != nil || !strings.Contains(data, `"settled"`) {
		t.Fatalf("after the timeouts: %q, %v", data, err)
	}
}

// Finding 5 (issue #8): four concurrent 150 MB bodies took the devnet from 58 to 1,466 MiB.
// Now bodies in flight share a fixed budget: with room for one 800 KiB body, seven more sent
// at the same time are refused with 503 before being read, and the budget is whole again
// once the first is gone.
func TestAttackConcurrentBodiesShareBudget(t *testing.T) {
	const budgetSize, bodySize = 1 << 20, 800 << 10
	addr, s := startServer(t, newFake(), Limits{BodyBudget: budgetSize, MaxJobBody: budgetSize,
		BudgetWait: 50 * time.Millisecond, BodyIdleTimeout: 5 * time.Second})
	head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", bodySize)

	conns := make([]net.Conn, 8)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, head); err != nil { // headers and one byte, then nothing
			t.Fatal(err)
		}
		conns[i] = c
	}
	var (
		mu              sync.Mutex
		refused, holder int
		wg              sync.WaitGroup
	)
	for i, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil: // still being read: it holds the budget
				holder = i
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "1":
				refused++
			default:
				t.Errorf("conn %d: %s", i, resp.Status)
			}
		})
	}
	wg.Wait()
	if refused != len(conns)-1 {
		t.Fatalf("%d of %d bodies refused, want all but one", refused, len(conns))
	}
	if free := s.budget.available(); free != budgetSize-bodySize {
		t.Errorf("budget free %d while one body is read, want %d", free, budgetSize-bodySize)
	}
	// A body of unknown length reserves the route's whole limit, so it is refused too.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/jobs", io.MultiReader(strings.NewReader("{}")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("chunked body while the budget is short: %s", resp.Status)
	}

	conns[holder].Close()
	waitFor(t, "the budget to be released", func() bool { return s.budget.available() == budgetSize })
	job, err := api.NewClient("http://"+addr).SubmitJob(context.Background(), validRequest())
	if err != nil || job.ID == "" {
		t.Fatalf("after the release: %+v, %v", job, err)
	}
}

func TestBodyTypeAndSize(t *testing.T) {
	svc := newFake()
	awaitingJob(svc, "j-up", 16)
	h := newTestHandler(t, svc)
	h.limits.MaxJobBody = 1 << 20 // still more than these bodies
	valid, _ := json.Marshal(validRequest())
	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		length                    int64 // Content-Length to claim; 0 means the body's, -1 unknown
		status                    int
		msg                       string
	}{
		{"json", "POST", "/v1/jobs", "application/json", valid, 0, 202, ""},
		{"json utf-8", "POST", "/v1/jobs", "application/json; charset=UTF-8", valid, 0, 202, ""},
		{"json unknown length", "POST", "/v1/jobs", "application/json", valid, -1, 202, ""},
		{"json latin-1", "POST", "/v1/jobs", "application/json; charset=latin1", valid, 0, 415, "send application/json"},
		{"no type", "POST", "/v1/jobs", "", valid, 0, 415, "Content-Type is missing"},
		{"form", "POST", "/v1/jobs", "application/x-www-form-urlencoded", valid, 0, 415, `"application/x-www-form-urlencoded" is not accepted`},
		{"json-ish", "POST", "/v1/jobs", "application/jsonx", valid, 0, 415, ""},
		{"tx as text", "POST", "/v1/chain/txs", "text/plain", []byte(`{"tx":"AQID"}`), 0, 415, ""},
		{"job too large", "POST", "/v1/jobs", "application/json", valid, 2 << 20, 413, "exceeds 1048576 bytes"},
		{"job too large, unknown length", "POST", "/v1/jobs", "application/json", bytes.Repeat([]byte(" "), 2<<20), -1, 413, "exceeds 1048576 bytes"},
		{"tx too large", "POST", "/v1/chain/txs", "application/json", []byte(`{"tx":"AQID"}`), maxTxBody + 1, 413, ""},
		{"upload as json", "PUT", "/v1/jobs/j-up/inputs/big", "application/json", []byte("0123456789abcdef"), 0, 415, "send application/octet-stream"},
		{"upload too large", "PUT", "/v1/jobs/j-up/inputs/big", "application/octet-stream", []byte("0"), api.MaxUploadBytes + 1, 413, "exceeds 8589934592 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(tt.method, tt.path, bytes.NewReader(tt.body))
			if tt.length != 0 {
				r.ContentLength = tt.length
			}
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			rec := serveRequest(h, r)
			var e api.Error
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != tt.status || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%d %s, want %d saying %q", rec.Code, rec.Body, tt.status, tt.msg)
			}
			if free := h.budget.available(); free != h.limits.BodyBudget {
				t.Errorf("budget free %d after the request, want all %d", free, h.limits.BodyBudget)
			}
		})
	}
}
