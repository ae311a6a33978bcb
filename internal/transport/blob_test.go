package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// TestLargeBlobOverWSS is the regression test for the WebSocket frame-size
// pitfall (DESIGN §9): a blob far above max_payload must arrive intact.
func TestLargeBlobOverWSS(t *testing.T) {
	n := startTestNet(t, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	node := n.dialNode(t, "n1", func(err error) { t.Errorf("async error: %v", err) })

	data := randomBytes(48<<20, 1)
	digest, err := PutBlob(ctx, adminJS, testBucket, data)
	if err != nil {
		t.Fatal(err)
	}
	if digest != Digest(data) {
		t.Fatalf("digest %s, want %s", digest, Digest(data))
	}
	n.access.AllowRead("n1", digest)
	start := time.Now()
	got, err := n.blobs(node, "n1").Get(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, not the %d put", len(got), len(data))
	}
	if r := node.Stats().Reconnects; r != 0 {
		t.Fatalf("%d reconnects during the transfer", r)
	}
	t.Logf("48 MiB get over wss: %v (%.0f MB/s)", elapsed, float64(len(data))/1e6/elapsed.Seconds())
}

func TestBlobRoundTripAndErrors(t *testing.T) {
	n := startTestNet(t, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	node := n.blobs(n.dialNode(t, "n1", func(err error) { t.Errorf("async error: %v", err) }), "n1")
	n.access.AllowWrite("n1", "job-1", 4<<20)

	t.Run("node puts, router gets", func(t *testing.T) {
		for _, size := range []int{0, 1, 128 << 10, uploadChunk, uploadChunk + 1, 3 << 20} {
			data := randomBytes(size, uint64(size))
			digest, err := node.Put(ctx, "job-1", data)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			got, err := GetBlob(ctx, adminJS, testBucket, digest)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("size %d: content differs", size)
			}
			// A small blob is one chunk of its own size: the store's Put buffers a chunk.
			obs, err := adminJS.ObjectStore(ctx, testBucket)
			if err != nil {
				t.Fatal(err)
			}
			sum, _ := ParseDigest(digest)
			info, err := obs.GetInfo(ctx, hex.EncodeToString(sum[:]))
			if err != nil {
				t.Fatal(err)
			}
			wantChunk := min(max(size, 1), objectChunk)
			if info.Opts == nil || info.Opts.ChunkSize != uint32(wantChunk) || info.Chunks != uint32((size+wantChunk-1)/wantChunk) {
				t.Fatalf("size %d: stored as %d chunks of %+v, want chunks of %d bytes", size, info.Chunks, info.Opts, wantChunk)
			}
			if again, err := node.Put(ctx, "job-1", data); err != nil || again != digest {
				t.Fatalf("size %d: second put = %s, %v", size, again, err)
			}
		}
	})

	t.Run("router puts, node gets what it was granted", func(t *testing.T) {
		// Empty, one chunk (answered with the get itself), and more (read in batches).
		for _, size := range []int{0, 1, objectChunk, objectChunk + 1, 1 << 20} {
			data := randomBytes(size, 7+uint64(size))
			digest, err := PutBlob(ctx, adminJS, testBucket, data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := node.Get(ctx, digest); !errors.Is(err, ErrForbidden) {
				t.Fatalf("size %d, before the grant: %v, want ErrForbidden", size, err)
			}
			n.access.AllowRead("n1", digest)
			if got, err := node.Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d, after the grant: %v", size, err)
			}
		}
	})

	t.Run("unknown digest", func(t *testing.T) {
		missing := Digest([]byte("never stored"))
		n.access.AllowRead("n1", missing)
		if _, err := node.Get(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("unknown bucket", func(t *testing.T) {
		if _, err := GetBlob(ctx, adminJS, "nope", Digest(nil)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("router got %v, want ErrNotFound", err)
		}
		other := node
		other.Bucket = "nope"
		if _, err := other.Get(ctx, Digest(nil)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("node got %v, want ErrNotFound", err)
		}
	})

	t.Run("malformed digest", func(t *testing.T) {
		if _, err := node.Get(ctx, "sha256:xyz"); !errors.Is(err, ErrInvalidDigest) {
			t.Fatalf("got %v, want ErrInvalidDigest", err)
		}
	})

	t.Run("content the store itself damaged", func(t *testing.T) {
		claimed := Digest([]byte("the real thing"))
		obs, err := adminJS.ObjectStore(ctx, testBucket)
		if err != nil {
			t.Fatal(err)
		}
		// Only the router writes metadata, so this stands for a fault of the store.
		if _, err := obs.PutBytes(ctx, strings.TrimPrefix(claimed, DigestPrefix), []byte("a forgery")); err != nil {
			t.Fatal(err)
		}
		n.access.AllowRead("n1", claimed)
		if _, err := node.Get(ctx, claimed); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("node got %v, want ErrDigestMismatch", err)
		}
		if _, err := GetBlob(ctx, adminJS, testBucket, claimed); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("router got %v, want ErrDigestMismatch", err)
		}
		// The genuine content repairs the entry.
		if _, err := PutBlob(ctx, adminJS, testBucket, []byte("the real thing")); err != nil {
			t.Fatal(err)
		}
		if got, err := node.Get(ctx, claimed); err != nil || string(got) != "the real thing" {
			t.Fatalf("after repair: %q, %v", got, err)
		}
	})
}

func TestParseDigest(t *testing.T) {
	valid := Digest([]byte("x"))
	cases := []struct {
		in string
		ok bool
	}{
		{valid, true},
		{strings.ToUpper(valid), false},
		{"sha256:" + strings.ToUpper(valid[7:]), false},
		{valid[7:], false},
		{valid[:len(valid)-1], false},
		{valid + "0", false},
		{"sha512:" + valid[7:], false},
		{"sha256:" + strings.Repeat("g", 64), false},
		{"", false},
	}
	for _, tc := range cases {
		sum, err := ParseDigest(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParseDigest(%q) error %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ParseDigest(%q) error %v does not wrap ErrInvalidDigest", tc.in, err)
		}
		if tc.ok && sum != sha256.Sum256([]byte("x")) {
			t.Errorf("ParseDigest(%q) = %x", tc.in, sum)
		}
	}
}

func FuzzParseDigest(f *testing.F) {
	f.Add(Digest(nil))
	f.Add(Digest([]byte("omnisync")))
	f.Add("sha256:")
	f.Add("sha256:" + strings.Repeat("A", 64))
	f.Add("SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Fuzz(func(t *testing.T, s string) {
		sum, err := ParseDigest(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDigest) {
				t.Fatalf("error %v does not wrap ErrInvalidDigest", err)
			}
			return
		}
		// Only the canonical form parses, so formatting gives s back.
		if canon := DigestPrefix + hex.EncodeToString(sum[:]); canon != s {
			t.Fatalf("ParseDigest(%q) accepted a non-canonical form of %s", s, canon)
		}
	})
}

func TestFullBucketRefusesNewBlobs(t *testing.T) {
	n := startTestNetWith(t, func(o *ServerOptions) { o.BucketMaxBytes = 1 << 20 }, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	node := n.blobs(n.dialNode(t, "n1", func(error) {}), "n1")
	n.access.AllowWrite("n1", "job", 4<<20)
	small := bytes.Repeat([]byte{1}, 256<<10)
	if _, err := node.Put(ctx, "job", small); err != nil {
		t.Fatalf("a blob under the limit: %v", err)
	}
	if _, err := node.Put(ctx, "job", bytes.Repeat([]byte{2}, 2<<20)); err == nil {
		t.Fatal("a node stored 2 MiB in a 1 MiB bucket")
	}
	n.access.AllowRead("n1", Digest(small))
	if got, err := node.Get(ctx, Digest(small)); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("the earlier blob was evicted or damaged: %v", err)
	}
}

// A participant's gets use the metadata the blob service remembers of a blob, and the
// reads of its batches what their get used; a blob deleted since is not found, whatever
// was remembered: its chunks went with it.
func TestDeletedBlobIsNotFoundWhateverWasRemembered(t *testing.T) {
	n := startTestNet(t, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	node := n.blobs(n.dialNode(t, "n1", func(err error) { t.Errorf("async error: %v", err) }), "n1")
	data := randomBytes(3*uploadChunk, 11)
	digest, err := PutBlob(ctx, adminJS, testBucket, data)
	if err != nil {
		t.Fatal(err)
	}
	n.access.AllowRead("n1", digest)
	for range 2 {
		if got, err := node.Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %v", err)
		}
	}
	obs, err := adminJS.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := ParseDigest(digest)
	if err := obs.Delete(ctx, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Get(ctx, digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after the blob was deleted: %v, want ErrNotFound", err)
	}
}

// Blobs are written without the object store's Put (putChunk, putChunks): the object
// store's own reader must read them as its own, and a name written again must leave no
// chunk of its earlier content behind.
func TestObjectsAreTheObjectStores(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	obs, err := adminJS.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 4 << 10, objectChunk, objectChunk + 1, (putWindow+3)*objectChunk - 7} {
		data := randomBytes(size, 40+uint64(size))
		digest, err := PutBlob(ctx, adminJS, testBucket, data)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		name := strings.TrimPrefix(digest, DigestPrefix)
		got, err := obs.GetBytes(ctx, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: the object store reads %d bytes, %v", size, len(got), err)
		}
		info, err := obs.GetInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != uint64(size) || info.Chunks != uint32((size+objectChunk-1)/objectChunk) || info.Digest != objectDigest(mustParse(t, digest)) {
			t.Fatalf("size %d: metadata %+v", size, info)
		}
	}

	// Damaged content under a name (a fault of the store), then the genuine content, of
	// one chunk and of many.
	for _, size := range []int{1000, 3*objectChunk + 1} {
		rewriteDamaged(t, adminJS, obs, randomBytes(size, 50))
	}
}

// rewriteDamaged stores damaged content under data's name, then data, and checks that the
// object store reads data and that the damaged content's chunks are gone.
func rewriteDamaged(t *testing.T, adminJS jetstream.JetStream, obs jetstream.ObjectStore, data []byte) {
	t.Helper()
	ctx := t.Context()
	name := strings.TrimPrefix(Digest(data), DigestPrefix)
	if _, err := obs.PutBytes(ctx, name, []byte("damaged")); err != nil {
		t.Fatal(err)
	}
	damaged, err := obs.GetInfo(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PutBlob(ctx, adminJS, testBucket, data); err != nil {
		t.Fatal(err)
	}
	if got, err := obs.GetBytes(ctx, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the rewrite: %d bytes, %v", len(got), err)
	}
	st, err := adminJS.Stream(ctx, objectStream(testBucket))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, "$O."+testBucket+".C."+damaged.NUID); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("the damaged content's chunk is still stored: %v", err)
	}
}

// storedChunks counts the chunks in the bucket's stream, st.
func storedChunks(tb testing.TB, st jetstream.Stream) uint64 {
	tb.Helper()
	info, err := st.Info(tb.Context(), jetstream.WithSubjectFilter("$O."+testBucket+".C.>"))
	if err != nil {
		tb.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// TestPuttingStoredContentAgainLeavesOneChunk: a small blob is written before anything is
// asked (putSmall), so a put of content already stored, or eight puts of one new content
// at once, must still leave the name with its content and the stream with one chunk.
func TestPuttingStoredContentAgainLeavesOneChunk(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	st, err := adminJS.Stream(ctx, objectStream(testBucket))
	if err != nil {
		t.Fatal(err)
	}
	chunks := func() uint64 { return storedChunks(t, st) }
	for i, writers := range []int{1, 8} {
		data := randomBytes(3000, 60+uint64(i))
		if writers == 1 {
			if _, err := PutBlob(ctx, adminJS, testBucket, data); err != nil {
				t.Fatal(err)
			}
		}
		before := chunks()
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Go(func() { _, errs[w] = PutBlob(ctx, adminJS, testBucket, data) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%d writers: %v", writers, err)
		}
		if got, err := GetBlob(ctx, adminJS, testBucket, Digest(data)); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d writers: reads %d bytes, %v", writers, len(got), err)
		}
		want := before
		if writers > 1 {
			want++ // the content was new
		}
		if got := chunks(); got != want {
			t.Fatalf("%d writers: %d chunks stored after, want %d", writers, got, want)
		}
	}
}

// readChecked returns exactly the declared bytes when they hash to the digest, and
// ErrDigestMismatch for fewer bytes, other bytes or a wrong digest; a declared size far
// beyond what comes is not allocated.
func TestReadChecked(t *testing.T) {
	data := bytes.Repeat([]byte("omnisync"), 2048) // 16 KiB
	sum := sha256.Sum256(data)
	for _, tt := range []struct {
		name string
		r    io.Reader
		sum  [32]byte
		size int64
		ok   bool
	}{
		{"exact", bytes.NewReader(data), sum, int64(len(data)), true},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data)), sum, int64(len(data)), true},
		{"more sent than declared", bytes.NewReader(append(slices.Clone(data), "tail"...)), sum, int64(len(data)), true},
		{"fewer", bytes.NewReader(data[:100]), sum, int64(len(data)), false},
		{"other bytes", bytes.NewReader(bytes.ToUpper(data)), sum, int64(len(data)), false},
		{"a size of a terabyte", bytes.NewReader(data), sum, 1 << 40, false},
		{"empty", bytes.NewReader(nil), sha256.Sum256(nil), 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readChecked(tt.r, tt.sum, tt.size)
			switch {
			case tt.ok && (err != nil || int64(len(got)) != tt.size || !bytes.Equal(got, data[:tt.size])):
				t.Fatalf("%d bytes, %v; want the %d declared", len(got), err, tt.size)
			case !tt.ok && !errors.Is(err, ErrDigestMismatch):
				t.Fatalf("%v, want ErrDigestMismatch", err)
			}
		})
	}
}

// PutHashed files data under the digest its caller computed, without hashing the bytes
// again: the caller is trusted with that. Readers still hash what they read, so bytes
// filed under another's digest read as ErrDigestMismatch, never as that content.
func TestPutHashedTrustsItsCaller(t *testing.T) {
	n := startTestNet(t, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := NewBucket(n.adminJS(t), testBucket)
	node := n.blobs(n.dialNode(t, "n1", nil), "n1")
	for _, size := range []int{1000, 2*objectChunk + 1} {
		data := randomBytes(size, uint64(size))
		digest := Digest(data)
		if err := b.PutHashed(ctx, digest, data); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: get: %v", size, err)
		}
		other := Digest(append([]byte("not "), data...))
		if err := b.PutHashed(ctx, other, data); err != nil {
			t.Fatalf("%d bytes under another digest: %v; want them filed unhashed", size, err)
		}
		if _, err := b.Get(ctx, other); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("%d bytes under another digest, read by the router: %v, want ErrDigestMismatch", size, err)
		}
		n.access.AllowRead("n1", other)
		if _, err := node.Get(ctx, other); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("%d bytes under another digest, read by a node: %v, want ErrDigestMismatch", size, err)
		}
	}
	if err := b.PutHashed(ctx, "sha256:ABC", nil); !errors.Is(err, ErrInvalidDigest) {
		t.Fatalf("a malformed digest: %v, want ErrInvalidDigest", err)
	}
}

// Has answers from the blob's metadata: the bytes stored under a digest at the size asked,
// whoever wrote them, and not once they are deleted.
func TestHasFindsWhatIsStored(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js := n.adminJS(t)
	writer := NewBucket(js, testBucket)
	for _, size := range []int{1000, 2*objectChunk + 1} {
		data := randomBytes(size, 70+uint64(size))
		digest := Digest(data)
		reader := NewBucket(js, testBucket) // remembers nothing: it asks the server
		if has, err := reader.Has(ctx, digest, int64(size)); err != nil || has {
			t.Fatalf("%d bytes, before they are stored: %v, %v", size, has, err)
		}
		if err := writer.PutHashed(ctx, digest, data); err != nil {
			t.Fatal(err)
		}
		for _, b := range []*Bucket{writer, reader} {
			if has, err := b.Has(ctx, digest, int64(size)); err != nil || !has {
				t.Fatalf("%d bytes, stored: %v, %v", size, has, err)
			}
			if has, err := b.Has(ctx, digest, int64(size)+1); err != nil || has {
				t.Fatalf("%d bytes, asked for one more: %v, %v", size, has, err)
			}
		}
		obs, err := js.ObjectStore(ctx, testBucket)
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := ParseDigest(digest)
		if err := obs.Delete(ctx, hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
		if has, err := NewBucket(js, testBucket).Has(ctx, digest, int64(size)); err != nil || has {
			t.Fatalf("%d bytes, deleted: %v, %v", size, has, err)
		}
	}
	if has, err := NewBucket(js, "no-such-bucket").Has(ctx, Digest([]byte("x")), 1); err != nil || has {
		t.Fatalf("a bucket that does not exist: %v, %v", has, err)
	}
	if _, err := writer.Has(ctx, "sha256:ABC", 1); !errors.Is(err, ErrInvalidDigest) {
		t.Fatalf("a malformed digest: %v, want ErrInvalidDigest", err)
	}
}

// lostAcks is a JetStream whose next lost publishes of metadata are stored but answered
// with a timeout, as an acknowledgement is that comes too late on a loaded server.
type lostAcks struct {
	jetstream.JetStream
	lost *atomic.Int32
}

func (l *lostAcks) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := l.JetStream.PublishMsgAsync(m, opts...)
	if err != nil || !strings.HasPrefix(m.Subject, "$O."+testBucket+".M.") || l.lost.Add(-1) < 0 {
		return f, err
	}
	select { // stored, or refused: either way the answer is lost
	case <-f.Ok():
	case <-f.Err():
	}
	return failedAck{f}, nil
}

// failedAck is a publish whose acknowledgement did not come in time.
type failedAck struct{ jetstream.PubAckFuture }

func (failedAck) Ok() <-chan *jetstream.PubAck { return nil }

func (failedAck) Err() <-chan error {
	err := make(chan error, 1)
	err <- context.DeadlineExceeded
	return err
}

// A put whose metadata was stored but whose acknowledgement was lost leaves the blob
// readable: its chunk is not purged, and the put sent again finds it intact. Purging it
// left metadata that named no chunk, and under load (a devnet at 1,000 jobs a second on
// two busy cores) jobs failed three attempts on "its chunk is not stored".
func TestPutWhoseAckWasLostLeavesTheBlobReadable(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	lost := new(atomic.Int32)
	lost.Store(1)
	lossy := func() *Bucket { // a bucket with no memory of what was put before
		b := NewBucket(n.adminJS(t), testBucket)
		b.js = &lostAcks{JetStream: b.js, lost: lost}
		return b
	}
	data := randomBytes(3000, 77)
	if _, err := lossy().Put(ctx, data); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put: %v, want the lost acknowledgement's error", err)
	}
	// The writer tries again (the router's retryInline), and a reader with no memory of it reads.
	if _, err := lossy().Put(ctx, data); err != nil {
		t.Fatalf("put again: %v", err)
	}
	if got, err := GetBlob(ctx, n.adminJS(t), testBucket, Digest(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
}

// A publish whose acknowledgement never comes (here the server drops it: the
// connection may not publish to the bucket) fails once the publisher's timeout passes,
// and leaves nothing pending with it: enough pending acknowledgements stall every
// later publish of the router's, or the blob service's, bucket.
func TestPutWhoseAckNeverComesLeavesNothingPending(t *testing.T) {
	n := startTestNet(t, "n1")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second) // the purge that follows waits it out
	defer cancel()
	nodeJS, err := jetstream.New(n.dialNode(t, "n1", func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	pub := publisher(nodeJS, 200*time.Millisecond)
	data := []byte("never acknowledged")
	sum := sha256.Sum256(data)
	_, err = putChunk(ctx, pub, testBucket, hex.EncodeToString(sum[:]), sum, data, nil, true)
	if !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
		t.Fatalf("put: %v, want ErrAsyncPublishTimeout before the put's deadline", err)
	}
	if pending := pub.PublishAsyncPending(); pending != 0 {
		t.Fatalf("%d publishes still pending", pending)
	}
}
