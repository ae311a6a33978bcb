package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A 429 (the signer's transactions fill its queue until the next block) is retried after
// its Retry-After, with the same body; other refusals are not.
func TestClientRetriesTooManyRequests(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		busy   = 1 // how many 429s to answer before accepting
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/json")
		if len(bodies) <= busy {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":"too many pending transactions: 64 from x","code":"too_many_requests"}`)
			return
		}
		io.WriteString(w, `{"hash":"AB","height":7}`)
	}))
	defer srv.Close()
	c := NewClient(srv.URL)

	start := time.Now()
	res, err := c.BroadcastTx(context.Background(), []byte("signed"))
	if err != nil || res.Height != 7 {
		t.Fatalf("BroadcastTx = %+v, %v; want it retried into success", res, err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before the 1 s Retry-After", waited)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || bodies[0] == "" {
		t.Fatalf("bodies sent: %q, want the same one twice", bodies)
	}

	// Without retries the error says what it is and how long to wait.
	mu.Lock()
	bodies, busy = nil, 5
	mu.Unlock()
	c.Retries429 = -1
	_, err = c.BroadcastTx(context.Background(), []byte("signed"))
	wait, retry := RetryAfter(err)
	if !errors.Is(err, ErrTooManyRequests) || !retry || wait != time.Second || !transient(err) {
		t.Fatalf("err %v (retry %v after %v), want a retryable ErrTooManyRequests after 1s", err, retry, wait)
	}
	if len(bodies) != 1 {
		t.Fatalf("%d requests with retries off", len(bodies))
	}
	if _, retry := RetryAfter(&ResponseError{StatusCode: 400}); retry {
		t.Error("a 400 is not retryable")
	}
}
