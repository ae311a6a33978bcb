package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
		fmt.Errorf("put blobs/x: %w", jetstream.ErrNoStreamResponse):    codeUnavailable,
		fmt.Errorf("put blobs/x: %w", nats.ErrTimeout):                  codeUnavailable,
		fmt.Errorf("put blobs/x: %w", jetstream.ErrAsyncPublishTimeout): codeUnavailable,
		fmt.Errorf("put blobs/x: %w", context.DeadlineExceeded):         codeUnavailable,
		refuse(codeBusy, "being written"):                               codeBusy,
		errors.New("disk on fire"):                                      codeFailed,
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

	var asked, unavailable atomic.Int32
	var last atomic.Value
	last.Store(blobReply{Stored: true})
	c := scriptedBlobs(t, startTestNet(t, "n1"), map[string]func(*nats.Msg) blobReply{
		blobVerbStore: func(*nats.Msg) blobReply {
			asked.Add(1)
			if unavailable.Add(-1) >= 0 {
				return storeUnavailable
			}
			return last.Load().(blobReply)
		},
	})
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

// An upload whose store fails midway, as when its stream loses its leader, answers the
// chunks its sender sent ahead, and any it sends after, with that failure coded
// unavailable, at once. Before, the write's end left them unanswered: the node waited
// out its wait for an ack (batchTimeout), then failed its job with a timeout that said
// nothing of why.
func TestUploadFailedMidwayAnswersItsChunksUnavailable(t *testing.T) {
	n := startTestNet(t, "n1", "n2")
	n.access.AllowWrite("n1", "job-1", 64<<20)
	c := n.blobs(n.dialNode(t, "n1", nil), "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const chunks = 128
	data := make([]byte, chunks*uploadChunk)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	r, err := c.call(ctx, c.subject(blobVerbPut), blobRequest{Bucket: testBucket, Job: "job-1", Digest: Digest(data), Size: int64(len(data))})
	if err != nil || r.Upload == "" {
		t.Fatalf("put = %+v, %v: want an upload", r, err)
	}
	inbox := c.Conn.NewInbox()
	sub, err := c.Conn.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	subject := c.subject(blobVerbData) + "." + r.Upload
	sent := 0
	send := func() {
		t.Helper()
		if err := c.Conn.PublishRequest(subject, inbox, data[sent*uploadChunk:(sent+1)*uploadChunk]); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	// answer is the next chunk's answer, which must come well within batchTimeout.
	answer := func() error {
		t.Helper()
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("chunk %d of %d sent: no answer: %v (want one at once)", sent, chunks, err)
		}
		_, err = decodeBlobReply(m.Data)
		return err
	}
	send()
	if err := answer(); err != nil {
		t.Fatalf("the first chunk: %v", err)
	}
	// With its stream gone, the store's publishes get no answer from a stream, as while
	// the stream elects a leader, but at once rather than at their timeout.
	if err := n.adminJS(t).DeleteStream(ctx, objectStream(testBucket)); err != nil {
		t.Fatal(err)
	}
	// Sent as Blobs.send does, up to uploadWindow ahead of the answers, until one is the
	// failure; slowly, as over a slow link, so that the store learns of its failure (its
	// publishes' acks are awaited asynchronously) before the last chunk.
	answered, failure := 1, error(nil)
	for failure == nil && answered < chunks {
		for sent < chunks && sent-answered < uploadWindow {
			time.Sleep(20 * time.Millisecond)
			send()
		}
		failure = answer()
		answered++
	}
	if !errors.Is(failure, ErrUnavailable) {
		t.Fatalf("the store failed, and its upload answered %v, want ErrUnavailable", failure)
	}
	if sent == chunks {
		t.Fatalf("every chunk was sent before the failure was told: the test did not fail the store midway")
	}
	for answered < sent { // those sent ahead
		if err := answer(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("a chunk sent ahead of the failure: %v, want ErrUnavailable", err)
		}
		answered++
	}
	send() // after the failure
	if err := answer(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a chunk sent after the failure: %v, want ErrUnavailable", err)
	}
	// Another node learns nothing of n1's failed upload: it has none of that id.
	mallory := n.blobs(n.dialNode(t, "n2", nil), "n2")
	if _, err := mallory.request(ctx, mallory.subject(blobVerbData)+"."+r.Upload, data[:1]); !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "stream") {
		t.Fatalf("another node's chunk to n1's failed upload: %v, want ErrNotFound and no word of the failure", err)
	}
}

// A Put of many chunks whose upload the store fails midway, unavailable, makes the
// upload again from its start and stores the blob.
func TestBlobPutMakesAnUploadFailedMidwayAgain(t *testing.T) {
	retry, within := unavailableRetry, unavailableFor
	unavailableRetry, unavailableFor = 5*time.Millisecond, 500*time.Millisecond
	t.Cleanup(func() { unavailableRetry, unavailableFor = retry, within })

	data := make([]byte, 3*uploadChunk)
	var uploads atomic.Int32
	chunks := map[string]int{} // by upload
	// The first upload's store fails after its first chunk; the second stores every chunk.
	c := scriptedBlobs(t, startTestNet(t, "n1"), map[string]func(*nats.Msg) blobReply{
		blobVerbPut: func(*nats.Msg) blobReply { return blobReply{Upload: fmt.Sprint("u", uploads.Add(1))} },
		blobVerbData: func(m *nats.Msg) blobReply {
			upload := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
			chunks[upload]++
			switch {
			case upload == "u1" && chunks[upload] > 1:
				return storeUnavailable
			case chunks[upload] == 3:
				return blobReply{Stored: true}
			}
			return blobReply{}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if digest, err := c.Put(ctx, "job-1", data); err != nil || digest != Digest(data) {
		t.Fatalf("Put = %q, %v: want it stored by a second upload", digest, err)
	}
	if got := uploads.Load(); got != 2 {
		t.Fatalf("%d uploads, want 2: one failed midway, one stored", got)
	}
}

// storeUnavailable is a blob service's answer while its stream elects a leader.
var storeUnavailable = blobReply{Error: "put blobs/x: nats: no response from stream", Code: codeUnavailable}

// scriptedBlobs is node n1's blob client of a blob service of its own name, whose
// answers script gives by verb (a chunk's is blobVerbData's), so that the router's own
// service answers nothing.
func scriptedBlobs(t *testing.T, n *testNet, script map[string]func(*nats.Msg) blobReply) Blobs {
	t.Helper()
	admin := n.adminConn(t)
	for verb, answer := range script {
		subject := NodeSubjectPrefix + "n1.blob.flaky." + verb
		if verb == blobVerbData {
			subject += ".*"
		}
		if _, err := admin.Subscribe(subject, func(m *nats.Msg) {
			b, _ := json.Marshal(answer(m))
			_ = m.Respond(b)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	return n.blobs(n.dialNode(t, "n1", nil), "n1").Via("flaky")
}

// A put of many chunks fails as soon as one publish fails, though the acknowledgement of
// one sent before it has not come, as when a stream loses its leader with a chunk in
// flight: that ack may never come but at the publisher's timeout (ackTimeout), and a node
// sending an upload gave up waiting first. The chunks are purged only once that publish
// has ended, so that none is stored after the purge. (Deleting a real stream under an
// upload, TestUploadFailedMidwayAnswersItsChunksUnavailable, lost such an ack one run in
// three under the race detector.)
func TestPutChunksFailsAtOnceOnAFailedPublishWhateverIsInFlight(t *testing.T) {
	js := &scriptedPublishes{purged: make(chan struct{})}
	first := newPubAck()
	js.futures = []pubAck{first, failedPubAck(jetstream.ErrNoStreamResponse)}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	data := make([]byte, 4*objectChunk)
	if _, err := putChunks(ctx, js, testBucket, "name", [32]byte(sha256.Sum256(data)), int64(len(data)), bytes.NewReader(data), nil); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("putChunks = %v, want the second publish's failure while the first is in flight", err)
	}
	select {
	case <-js.purged:
		t.Fatal("the chunks were purged while a publish was in flight: it may be stored after")
	case <-time.After(50 * time.Millisecond):
	}
	first.err <- errors.New("nats: timeout waiting for ack")
	select {
	case <-js.purged:
	case <-ctx.Done():
		t.Fatal("the chunks were not purged once the publish in flight had ended")
	}
}

// scriptedPublishes is a JetStream whose asynchronous publishes end as futures says, in
// turn (those past its end are stored), and whose streams are missing: a purge is
// told on purged. Any other call panics.
type scriptedPublishes struct {
	jetstream.JetStream
	futures []pubAck
	purged  chan struct{}
}

func (s *scriptedPublishes) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if len(s.futures) == 0 {
		f := newPubAck()
		f.ok <- &jetstream.PubAck{}
		return f, nil
	}
	f := s.futures[0]
	s.futures = s.futures[1:]
	return f, nil
}

func (s *scriptedPublishes) Stream(context.Context, string) (jetstream.Stream, error) {
	close(s.purged)
	return nil, jetstream.ErrStreamNotFound
}

type pubAck struct {
	ok  chan *jetstream.PubAck
	err chan error
}

func newPubAck() pubAck {
	return pubAck{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
}

func failedPubAck(err error) pubAck {
	f := newPubAck()
	f.err <- err
	return f
}

func (f pubAck) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f pubAck) Err() <-chan error            { return f.err }
func (f pubAck) Msg() *nats.Msg               { return nil }
