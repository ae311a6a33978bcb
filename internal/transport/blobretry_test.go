package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The blob service tells a store whose stream did not answer, as while its servers elect
// a leader, from one that failed for good.
func TestBlobServiceCodesAStreamWithoutALeaderUnavailable(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("put blobs/x: %w", jetstream.ErrNoStreamResponse): codeUnavailable,
		fmt.Errorf("put blobs/x: %w", nats.ErrTimeout):               codeUnavailable,
		fmt.Errorf("put blobs/x: %w", context.DeadlineExceeded):      codeUnavailable,
		refuse(codeBusy, "being written"):                            codeBusy,
		errors.New("disk on fire"):                                   codeFailed,
	} {
		if got := codeOf(err); got != want {
			t.Errorf("codeOf(%v) = %q, want %q", err, got, want)
		}
	}
}

// A node's Put waits out a blob store that is unavailable for a while and stores its
// output once it answers; one unavailable past unavailableFor, or failing otherwise, is
// an error at once. (Before, one unanswered store failed the node's attempt: while the
// stream of a cut-off router elected a leader, a job failed on each node it was tried on
// and was refunded.)
func TestBlobPutWaitsOutAnUnavailableStore(t *testing.T) {
	retry, within := unavailableRetry, unavailableFor
	unavailableRetry, unavailableFor = 5*time.Millisecond, 500*time.Millisecond
	t.Cleanup(func() { unavailableRetry, unavailableFor = retry, within })

	n := startTestNet(t, "n1")
	admin := n.adminConn(t)
	var asked, unavailable atomic.Int32
	var last atomic.Value
	last.Store(blobReply{Stored: true})
	// A blob service of its own name, so that the router's own answers nothing here.
	if _, err := admin.Subscribe(NodeSubjectPrefix+"n1.blob.flaky."+blobVerbStore, func(m *nats.Msg) {
		asked.Add(1)
		r := last.Load().(blobReply)
		if unavailable.Add(-1) >= 0 {
			r = blobReply{Error: "put blobs/x: nats: no response from stream", Code: codeUnavailable}
		}
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	c := n.blobs(n.dialNode(t, "n1", nil), "n1").Via("flaky")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	unavailable.Store(3)
	if digest, err := c.Put(ctx, "job-1", []byte("output")); err != nil || digest != Digest([]byte("output")) {
		t.Fatalf("Put = %q, %v: want it stored after the store came back", digest, err)
	}
	if got := asked.Load(); got != 4 {
		t.Fatalf("asked %d times, want 4: three unavailable, then stored", got)
	}

	asked.Store(0)
	unavailable.Store(1 << 20)
	start := time.Now()
	if _, err := c.Put(ctx, "job-1", []byte("output")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a store unavailable for good: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second || asked.Load() < 3 {
		t.Fatalf("gave up after %v and %d requests, want a few within about %v", took, asked.Load(), unavailableFor)
	}

	asked.Store(0)
	unavailable.Store(0)
	last.Store(blobReply{Error: "disk on fire", Code: codeFailed})
	if _, err := c.Put(ctx, "job-1", []byte("output")); err == nil || errors.Is(err, ErrUnavailable) || asked.Load() != 1 {
		t.Fatalf("a failed store: %v after %d requests, want ErrBlob after one", err, asked.Load())
	}
}
