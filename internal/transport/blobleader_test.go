package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// laggingReplica stands between a blob service and its server's JetStream, under an API
// prefix of its own. While behind, it answers every direct get as a replica that holds
// nothing yet would, with 404; every other request it passes on, counting the message
// gets, which in a cluster only the stream's leader answers.
type laggingReplica struct {
	prefix     string
	behind     atomic.Bool
	leaderGets atomic.Int32
}

func startLaggingReplica(tb testing.TB, nc *nats.Conn) *laggingReplica {
	tb.Helper()
	l := &laggingReplica{prefix: "lagging.api."}
	l.behind.Store(true)
	_, err := nc.Subscribe(l.prefix+">", func(m *nats.Msg) {
		api := strings.TrimPrefix(m.Subject, l.prefix)
		switch {
		case strings.HasPrefix(api, "DIRECT.GET.") && l.behind.Load():
			miss := nats.NewMsg(m.Reply)
			miss.Header.Set("Status", "404")
			miss.Header.Set("Description", "Message Not Found")
			_ = nc.PublishMsg(miss)
			return
		case strings.HasPrefix(api, "STREAM.MSG.GET."):
			l.leaderGets.Add(1)
		}
		// The same reply subject: JetStream answers the requester, batches included.
		_ = nc.PublishMsg(&nats.Msg{Subject: jetstream.DefaultAPIPrefix + api, Reply: m.Reply, Header: m.Header, Data: m.Data})
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	return l
}

// asks runs f and reports how many questions the leader was asked meanwhile.
func (l *laggingReplica) asks(f func()) int32 {
	before := l.leaderGets.Load()
	f()
	return l.leaderGets.Load() - before
}

// caughtUp checks that, with the replica caught up, get finds each of digests by direct
// get alone: the leader is asked nothing.
func (l *laggingReplica) caughtUp(t *testing.T, digests []string, get func(digest string) error) {
	t.Helper()
	l.behind.Store(false)
	defer l.behind.Store(true)
	for _, digest := range digests {
		var err error
		if asked := l.asks(func() { err = get(digest) }); err != nil || asked != 0 {
			t.Fatalf("%s: %v, the leader asked %d times; want it found by direct get alone", digest, err, asked)
		}
	}
}

// laggingBucket is a Bucket on nc that reads through l, opened and then taken to be
// replicated, as a router's is on a cluster.
func laggingBucket(tb testing.TB, nc *nats.Conn, l *laggingReplica) *Bucket {
	tb.Helper()
	js, err := jetstream.NewWithAPIPrefix(nc, l.prefix)
	if err != nil {
		tb.Fatal(err)
	}
	b := NewBucket(js, testBucket)
	if _, err := b.open(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	b.replicated = true
	return b
}

// startLaggingBlobService runs a second blob service on n's server, as one of a
// replicated cluster's, answering requests to server "lagging" through l.
func startLaggingBlobService(tb testing.TB, n *testNet, l *laggingReplica) {
	tb.Helper()
	nc, err := n.srv.ConnectInProcess(tb.Context(), n.admin, "lagging-blob-service")
	if err != nil {
		tb.Fatal(err)
	}
	js, err := jetstream.NewWithAPIPrefix(nc, l.prefix)
	if err != nil {
		nc.Close()
		tb.Fatal(err)
	}
	b := newBlobService(n.srv, nc, js)
	b.name, b.relayed, b.replicated = "lagging", true, true
	if err := b.subscribe(); err != nil {
		b.close()
		tb.Fatal(err)
	}
	tb.Cleanup(b.close)
}

// A replica behind its stream's leader answers a direct get with nothing. The blob
// service asks the leader before it answers "not found": a stored blob, of one chunk or
// several, arrives whole; an absent one is still not found, as soon as the leader says
// so; a participant without a grant is refused before anyone is asked; a put of a stored
// blob is not written again; and once the replica has caught up, nobody asks the leader.
func TestBlobServiceAsksTheLeaderWhenAReplicaHasNothing(t *testing.T) {
	n := startTestNet(t, "n1", "mallory")
	ctx := t.Context()
	lag := startLaggingReplica(t, n.adminConn(t))
	startLaggingBlobService(t, n, lag)
	adminJS := n.adminJS(t)
	node := n.blobs(n.dialNode(t, "n1", func(err error) { t.Errorf("async error: %v", err) }), "n1").Via("lagging")
	mallory := n.blobs(n.dialNode(t, "mallory", nil), "mallory").Via("lagging")

	small := []byte("an input stored a moment ago")
	large := randomBytes(3*objectChunk+1, 3) // four chunks, read in batches
	var digests []string
	for _, data := range [][]byte{small, large} {
		digest, err := PutBlob(ctx, adminJS, testBucket, data)
		if err != nil {
			t.Fatal(err)
		}
		n.access.AllowRead("n1", digest)
		digests = append(digests, digest)
	}
	absent := Digest([]byte("never stored"))
	n.access.AllowRead("n1", absent)

	asks := lag.asks
	t.Run("one chunk", func(t *testing.T) {
		var got []byte
		var err error
		if asked := asks(func() { got, err = node.Get(ctx, digests[0]) }); err != nil || !bytes.Equal(got, small) || asked != 2 {
			t.Fatalf("read %q, %v, asking the leader %d times; want the blob, its metadata and chunk from the leader", got, err, asked)
		}
	})
	t.Run("several chunks", func(t *testing.T) {
		var got []byte
		var err error
		// The metadata, then each chunk: a batch the replica misses ends after the leader's chunk.
		if asked := asks(func() { got, err = node.Get(ctx, digests[1]) }); err != nil || !bytes.Equal(got, large) || asked != 5 {
			t.Fatalf("read %d bytes, %v, asking the leader %d times; want %d bytes and 5 questions", len(got), err, asked, len(large))
		}
	})
	t.Run("absent", func(t *testing.T) {
		var err error
		start := time.Now()
		asked := asks(func() { _, err = node.Get(ctx, absent) })
		if took := time.Since(start); !errors.Is(err, ErrNotFound) || asked != 1 || took >= leaderTimeout {
			t.Fatalf("an absent blob: %v after %s, asking the leader %d times; want not found from its one answer", err, took, asked)
		}
	})
	t.Run("absent chunk", func(t *testing.T) {
		// A read naming a sequence past the object's chunks: the leader has none there either.
		body, _ := json.Marshal(blobRequest{Bucket: testBucket, Digest: digests[1], Seq: 1 << 40, Batch: 1})
		var m *nats.Msg
		var err error
		asked := asks(func() { m, err = node.ask(ctx, &nats.Msg{Subject: node.subject(blobVerbRead), Data: body}) })
		if err != nil || m.Header.Get("Status") != "404" || asked != 1 {
			t.Fatalf("a read past the last chunk: %v, %v, asking the leader %d times; want 404 from its one answer", m, err, asked)
		}
	})
	t.Run("no grant", func(t *testing.T) {
		var getErr, readErr error
		asked := asks(func() {
			_, getErr = mallory.Get(ctx, digests[0])
			_, readErr = readChunks(ctx, mallory.Conn, digests[1], uint64(len(large)), 4, func(seq uint64, batch int) (string, []byte) {
				body, _ := json.Marshal(blobRequest{Bucket: testBucket, Digest: digests[1], Seq: seq, Batch: batch})
				return mallory.subject(blobVerbRead), body
			})
		})
		if !errors.Is(getErr, ErrForbidden) || !errors.Is(readErr, ErrForbidden) || asked != 0 {
			t.Fatalf("a participant without a grant: get %v, read %v, the leader asked %d times; want forbidden, unasked", getErr, readErr, asked)
		}
	})
	t.Run("put of a stored blob", func(t *testing.T) {
		// A blob over one chunk is looked for before it is written (storedIntact).
		st, err := adminJS.Stream(ctx, objectStream(testBucket))
		if err != nil {
			t.Fatal(err)
		}
		n.access.AllowWrite("n1", "job", int64(len(large)))
		before := storedChunks(t, st)
		if asked := asks(func() { _, err = node.Put(ctx, "job", large) }); err != nil || asked != 1 {
			t.Fatalf("put: %v, asking the leader %d times; want it found by the leader's one answer", err, asked)
		}
		if got := storedChunks(t, st); got != before {
			t.Fatalf("%d chunks stored after, want the %d before: the blob was written again", got, before)
		}
	})
	t.Run("caught up", func(t *testing.T) {
		lag.caughtUp(t, digests, func(d string) error { _, err := node.Get(ctx, d); return err })
	})
}

// A router reads blobs through Bucket, as the blob service reads them for participants,
// and asks the leader as the service does: what a replica behind it misses, metadata or
// chunks, arrives whole; an absent blob is not found as soon as the leader says so; a
// bucket of one replica, whose server answers everything itself, asks nobody; and once the
// replica has caught up, nobody asks the leader.
func TestBucketAsksTheLeaderWhenAReplicaHasNothing(t *testing.T) {
	n := startTestNet(t)
	ctx := t.Context()
	nc := n.adminConn(t)
	lag := startLaggingReplica(t, nc)
	bkt := laggingBucket(t, nc, lag)
	adminJS := n.adminJS(t)

	small := []byte("a result stored a moment ago")
	large := randomBytes(3*objectChunk+1, 4) // four chunks
	var digests []string
	for _, data := range [][]byte{small, large} {
		digest, err := PutBlob(ctx, adminJS, testBucket, data)
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digest)
	}
	for _, c := range []struct {
		name   string
		digest string
		want   []byte
		asked  int32 // the metadata, then every chunk
	}{
		{"one chunk", digests[0], small, 2},
		{"several chunks", digests[1], large, 5},
		{"absent", Digest([]byte("never stored")), nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []byte
			var err error
			start := time.Now()
			asked := lag.asks(func() { got, err = bkt.Get(ctx, c.digest) })
			if c.want == nil && (!errors.Is(err, ErrNotFound) || time.Since(start) >= leaderTimeout) {
				t.Fatalf("an absent blob: %v after %s; want not found from the leader's one answer", err, time.Since(start))
			}
			if c.want != nil && (err != nil || !bytes.Equal(got, c.want)) {
				t.Fatalf("read %d bytes, %v; want the %d stored", len(got), err, len(c.want))
			}
			if asked != c.asked {
				t.Fatalf("the leader was asked %d times; want %d", asked, c.asked)
			}
		})
	}
	t.Run("one replica", func(t *testing.T) {
		js, err := jetstream.NewWithAPIPrefix(nc, lag.prefix)
		if err != nil {
			t.Fatal(err)
		}
		single := NewBucket(js, testBucket) // learns its replicas from the stream: one
		var getErr error
		if asked := lag.asks(func() { _, getErr = single.Get(ctx, digests[0]) }); !errors.Is(getErr, ErrNotFound) || asked != 0 || single.replicated {
			t.Fatalf("a bucket of one replica: %v, asking the leader %d times (replicated %t); want not found, unasked", getErr, asked, single.replicated)
		}
	})
	t.Run("caught up", func(t *testing.T) {
		lag.caughtUp(t, digests, func(d string) error { _, err := bkt.Get(ctx, d); return err })
	})
}

// A small blob's metadata is written only where its name has none (putSmall). Refused,
// the writer reads what the name holds from the leader, whose refusal says the name
// exists, though the replica answering direct gets has nothing yet. A larger blob's
// writer looks first (storedIntact) and, told "absent" by that replica, asks the leader.
// Either way content stored intact is left as it is, with its chunks; damaged content is
// written over, and its chunk goes; and no chunk is left that no metadata names.
func TestPutReadsWhatTheLeaderHolds(t *testing.T) {
	n := startTestNet(t)
	ctx := t.Context()
	nc := n.adminConn(t)
	lag := startLaggingReplica(t, nc)
	bkt := laggingBucket(t, nc, lag)
	adminJS := n.adminJS(t)
	obs, err := adminJS.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := adminJS.Stream(ctx, objectStream(testBucket))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		data   []byte
		chunks uint64 // the content's, stored
		intact bool   // else the name holds damaged content
	}{
		{"small, stored intact", randomBytes(3000, 70), 1, true},
		{"small, stored damaged", randomBytes(3000, 71), 1, false},
		{"large, stored intact", randomBytes(3*objectChunk+1, 72), 4, true},
		{"large, stored damaged", randomBytes(3*objectChunk+1, 73), 4, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.TrimPrefix(Digest(c.data), DigestPrefix)
			stored := []byte("damaged")
			if c.intact {
				stored = c.data
			}
			if _, err := obs.PutBytes(ctx, name, stored); err != nil {
				t.Fatal(err)
			}
			held, err := obs.GetInfo(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			want := storedChunks(t, st)
			if !c.intact {
				want += c.chunks - uint64(held.Chunks)
			}
			asked := lag.asks(func() { _, err = bkt.Put(ctx, c.data) })
			if err != nil {
				t.Fatalf("put through a lagging replica: %v", err)
			}
			if got := storedChunks(t, st); got != want {
				t.Fatalf("%d chunks stored after, want %d", got, want)
			}
			if got, err := GetBlob(ctx, adminJS, testBucket, Digest(c.data)); err != nil || !bytes.Equal(got, c.data) {
				t.Fatalf("reads %d bytes, %v; want the content put", len(got), err)
			}
			if _, err = st.GetLastMsgForSubject(ctx, chunkSubject(testBucket, held.NUID)); c.intact != (err == nil) {
				t.Fatalf("the chunk the name held before: %v; want it kept only if it was intact", err)
			}
			if asked != 1 {
				t.Fatalf("the leader was asked %d times; want once, for what the name holds", asked)
			}
		})
	}
}
