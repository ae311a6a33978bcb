package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRecentForgetsAfterRecentForAndWhenFull(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecent(func() time.Time { return now })
	has := func(key string) bool { return r.info(key) != nil }
	a := &jetstream.ObjectInfo{NUID: "a"}
	r.note("a", a)
	if r.info("a") != a || has("b") {
		t.Fatal("a noted, b not: info disagrees")
	}
	now = now.Add(recentFor - time.Nanosecond)
	if !has("a") {
		t.Fatal("a forgotten before recentFor")
	}
	now = now.Add(time.Nanosecond)
	if has("a") {
		t.Fatal("a remembered past recentFor")
	}
	r.note("a", a)
	for i := range maxRecent - 1 {
		r.note(fmt.Sprint(i), a)
	}
	r.note("one too many", a) // nothing has expired: all go
	if len(r.at) != 1 || !has("one too many") || has("a") {
		t.Fatalf("full: %d names held after one more, want only the new one", len(r.at))
	}
	now = now.Add(recentFor)
	for i := range maxRecent - 1 {
		r.note(fmt.Sprint(i), a)
	}
	r.note("last", a) // "one too many" has expired and goes; the rest stay
	if len(r.at) != maxRecent || has("one too many") || !has("0") {
		t.Fatalf("full with one expired: %d held", len(r.at))
	}
}

// What a put would find intact is metadata of the same size and digest; and a name is
// forgotten only while it still holds the metadata found stale, not what a write noted
// since.
func TestRecentHoldsAndForgets(t *testing.T) {
	r := newRecent(time.Now)
	data := []byte("content")
	sum := sha256.Sum256(data)
	stale := &jetstream.ObjectInfo{NUID: "old", Size: uint64(len(data)), Digest: objectDigest(sum)}
	r.note("k", stale)
	if !r.holds("k", sum, int64(len(data))) || r.holds("k", sum, 1) || r.holds("k", sha256.Sum256([]byte("other")), int64(len(data))) {
		t.Fatal("holds: want only the size and digest noted")
	}
	rewritten := &jetstream.ObjectInfo{NUID: "new", Size: uint64(len(data)), Digest: objectDigest(sum)}
	r.note("k", rewritten)
	r.forget("k", stale)
	if r.info("k") != rewritten {
		t.Fatal("forgetting stale metadata dropped what was noted since")
	}
	r.forget("k", rewritten)
	if r.info("k") != nil || r.holds("k", sum, int64(len(data))) {
		t.Fatal("forgotten metadata still serves")
	}
}

// A bucket leaves content it put within recentFor alone without asking the server, and
// after recentFor checks, and repairs, as before.
func TestBucketPutsAgainOnlyAfterRecentFor(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js := n.adminJS(t)
	now := time.Unix(1000, 0)
	b := NewBucket(js, testBucket)
	b.recent = newRecent(func() time.Time { return now })
	data := randomBytes(2000, 70)
	digest, err := b.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(digest, DigestPrefix)
	if _, err := obs.PutBytes(ctx, name, []byte("damaged")); err != nil { // a fault of the store
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, _ := obs.GetBytes(ctx, name); !bytes.Equal(got, []byte("damaged")) {
		t.Fatal("a put within recentFor asked the server after all")
	}
	now = now.Add(recentFor)
	if _, err := b.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, err := obs.GetBytes(ctx, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after recentFor the damage stays: %q, %v", got, err)
	}
}

// countLookups counts, from now on, the requests for a blob's metadata in testBucket
// that reach n's server: the direct gets of a name's last metadata, and the messages
// asked of the stream's leader. Each count is exact once the requests counted have been
// answered.
func countLookups(t *testing.T, n *testNet) func() int {
	t.Helper()
	nc := n.adminConn(t)
	stream := objectStream(testBucket)
	var subs []*nats.Subscription
	for _, subject := range []string{"$JS.API.DIRECT.GET." + stream + ".$O." + testBucket + ".M.>", "$JS.API.STREAM.MSG.GET." + stream} {
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() int {
		t.Helper()
		// The server queued each request for this connection before it answered it, so
		// the pong comes after them.
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, sub := range subs {
			pending, _, err := sub.Pending()
			if err != nil {
				t.Fatal(err)
			}
			total += pending
		}
		return total
	}
}

// A bucket reads a blob it wrote, or read before, without asking for its metadata; when
// the name is written over (its chunks replaced) it asks once and reads the new chunks,
// and a blob deleted is not found, whatever it remembered.
func TestBucketGetRemembersMetadata(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js := n.adminJS(t)
	obs, err := js.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	lookups := countLookups(t, n)
	b := NewBucket(js, testBucket)
	get := func(t *testing.T, digest string, want []byte, wantLookups int) {
		t.Helper()
		before := lookups()
		if got, err := b.Get(ctx, digest); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("get: %d bytes, %v; want the %d put", len(got), err, len(want))
		}
		if asked := lookups() - before; asked != wantLookups {
			t.Fatalf("get asked for the metadata %d times, want %d", asked, wantLookups)
		}
	}
	for _, size := range []int{2000, 3*objectChunk + 1} {
		t.Run(fmt.Sprint(size, " bytes"), func(t *testing.T) {
			data := randomBytes(size, uint64(size))
			digest, err := b.Put(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			get(t, digest, data, 0) // written by b
			get(t, digest, data, 0)

			name := strings.TrimPrefix(digest, DigestPrefix)
			if _, err := obs.PutBytes(ctx, name, data); err != nil { // another writer: new chunks, the old purged
				t.Fatal(err)
			}
			get(t, digest, data, 1)
			get(t, digest, data, 0) // read: remembered again

			if err := obs.Delete(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Get(ctx, digest); !errors.Is(err, ErrNotFound) {
				t.Fatalf("get of a deleted blob: %v, want ErrNotFound", err)
			}
			if _, err := b.Put(ctx, data); err != nil { // stored again: readable again
				t.Fatal(err)
			}
			get(t, digest, data, 0)
		})
	}
}

// The blob service answers a participant's get of a blob it wrote or read lately without
// asking JetStream for its metadata, the reads of a larger blob's batches included; a
// blob written over since is read as it now is, and a deleted one is not found, nor
// taken as present when it is stored again.
func TestBlobServiceRemembersMetadata(t *testing.T) {
	n := startTestNet(t, "n1", "n2")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js := n.adminJS(t)
	obs, err := js.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	lookups := countLookups(t, n)
	router := NewBucket(js, testBucket)
	n1 := n.blobs(n.dialNode(t, "n1", nil), "n1")
	n2 := n.blobs(n.dialNode(t, "n2", nil), "n2")
	get := func(t *testing.T, who Blobs, digest string, want []byte, wantLookups int) {
		t.Helper()
		before := lookups()
		if got, err := who.Get(ctx, digest); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s's get: %d bytes, %v; want the %d put", who.ID, len(got), err, len(want))
		}
		if asked := lookups() - before; asked != wantLookups {
			t.Fatalf("%s's get had the service ask for the metadata %d times, want %d", who.ID, asked, wantLookups)
		}
	}
	n.access.AllowWrite("n1", "job", 1<<20)
	output := randomBytes(5000, 90)
	outDigest, err := n1.Put(ctx, "job", output)
	if err != nil {
		t.Fatal(err)
	}
	n.access.AllowRead("n2", outDigest)
	get(t, n2, outDigest, output, 0) // stored through the service

	for _, size := range []int{3000, 3*objectChunk + 1} {
		t.Run(fmt.Sprint(size, " bytes"), func(t *testing.T) {
			input := randomBytes(size, uint64(size))
			digest, err := router.Put(ctx, input) // the router's own bucket: the service has not seen it
			if err != nil {
				t.Fatal(err)
			}
			n.access.AllowRead("n1", digest)
			n.access.AllowRead("n2", digest)
			get(t, n1, digest, input, 1)
			get(t, n2, digest, input, 0)

			name := strings.TrimPrefix(digest, DigestPrefix)
			if _, err := obs.PutBytes(ctx, name, input); err != nil { // written over: new chunks, the old purged
				t.Fatal(err)
			}
			get(t, n1, digest, input, 1)
			get(t, n2, digest, input, 0)

			if err := obs.Delete(ctx, name); err != nil {
				t.Fatal(err)
			}
			if _, err := n2.Get(ctx, digest); !errors.Is(err, ErrNotFound) {
				t.Fatalf("get of a deleted blob: %v, want ErrNotFound", err)
			}
			if _, err := n1.Put(ctx, "job", input); err != nil { // stored again: readable again
				t.Fatal(err)
			}
			get(t, n2, digest, input, 0)
		})
	}
}

// A router's bucket from its server (Server.Bucket) and the server's blob service share
// what they remember: a node reads an input the router stored, and the router an output
// a node stored, without the metadata asked for.
func TestServerBucketSharesWhatTheServiceRemembers(t *testing.T) {
	n := startTestNet(t, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lookups := countLookups(t, n)
	router := n.srv.Bucket(n.adminJS(t), testBucket)
	node := n.blobs(n.dialNode(t, "n1", nil), "n1")
	input := randomBytes(4000, 96)
	digest, err := router.Put(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	n.access.AllowRead("n1", digest)
	n.access.AllowWrite("n1", "job", 1<<20)
	before := lookups()
	if got, err := node.Get(ctx, digest); err != nil || !bytes.Equal(got, input) {
		t.Fatalf("the node's get of the input: %v", err)
	}
	output := randomBytes(6000, 97)
	outDigest, err := node.Put(ctx, "job", output)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := router.Get(ctx, outDigest); err != nil || !bytes.Equal(got, output) {
		t.Fatalf("the router's get of the output: %v", err)
	}
	if asked := lookups() - before; asked != 0 {
		t.Fatalf("the metadata was asked for %d times, want 0", asked)
	}
}
