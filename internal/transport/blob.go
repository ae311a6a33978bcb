package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DigestPrefix starts every blob digest.
const DigestPrefix = "sha256:"

const (
	// batchBytes caps one direct-get batch. Small enough that even a client
	// without the browser user agent never sees a frame nats.go would drop.
	batchBytes = 4 << 20
	// batchTimeout bounds the wait for one reply, batch or ack, whatever ctx allows: a
	// message lost on its way (a participant moving between a cluster's servers) fails
	// that step, not the job's whole deadline.
	batchTimeout = 15 * time.Second
	// ackTimeout bounds the wait for the acknowledgement of one publish to the object
	// store, which a stream losing its leader may never send. It is shorter than a
	// participant's wait for the blob service's answer (batchTimeout), so that the
	// service tells it so, unavailable, and it tries again, rather than give up waiting.
	ackTimeout = 10 * time.Second
	// maxPrealloc bounds the buffer reserved up front for a blob.
	maxPrealloc = 64 << 20
)

// Digest returns the content address of data: "sha256:" + lowercase hex.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// ParseDigest decodes "sha256:" followed by 64 lowercase hex digits. Only the
// canonical form is accepted, so one blob has exactly one name.
func ParseDigest(s string) ([32]byte, error) {
	var sum [32]byte
	h, ok := strings.CutPrefix(s, DigestPrefix)
	if !ok || len(h) != 2*len(sum) {
		return sum, fmt.Errorf("%w: %.80q is not sha256:<64 hex digits>", ErrInvalidDigest, s)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return sum, fmt.Errorf("%w: %.80q has a character other than 0-9 a-f", ErrInvalidDigest, s)
		}
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, fmt.Errorf("%w: %v", ErrInvalidDigest, err)
	}
	return sum, nil
}

// Bucket is an object-store bucket of blobs, opened at its first use and kept: opening
// one asks the server for its stream's info twice (the object store's own, then ours for
// its replicas), which a router paid at every input it stored. It needs the rights to
// the bucket that the router has, not a participant's (participants use Blobs). It is
// safe for concurrent use.
type Bucket struct {
	js     jetstream.JetStream
	name   string
	recent *recent // metadata of names written or read lately: put again, they are left alone
	mu     sync.Mutex
	obs    jetstream.ObjectStore // nil until opened
	// replicated: the bucket's stream has several replicas, some maybe behind its leader,
	// so a miss is asked again of the leader before it is ErrNotFound (blobleader.go).
	// Learnt when the bucket is opened.
	replicated bool
}

// NewBucket returns the bucket of that name; nothing is asked of the server until it is
// used. It works through a JetStream context of its own, like js but for its
// asynchronous publishes (publisher).
func NewBucket(js jetstream.JetStream, name string) *Bucket {
	return &Bucket{js: publisher(js, ackTimeout), name: name, recent: newRecent(time.Now)}
}

// publisher is a JetStream context over js's connection and API whose asynchronous
// publishes, putChunk's, fail once timeout passes without their acknowledgement: one
// that never comes (a message lost on its way) would stay pending with the context for
// good, and enough of them stall every later publish. It is js itself if that cannot be
// made.
func publisher(js jetstream.JetStream, timeout time.Duration) jetstream.JetStream {
	o := js.Options()
	opts := []jetstream.JetStreamOpt{jetstream.WithPublishAsyncTimeout(timeout)}
	if o.DefaultTimeout > 0 {
		opts = append(opts, jetstream.WithDefaultTimeout(o.DefaultTimeout))
	}
	var pub jetstream.JetStream
	var err error
	switch {
	case o.Domain != "":
		pub, err = jetstream.NewWithDomain(js.Conn(), o.Domain, opts...)
	case o.APIPrefix != "":
		pub, err = jetstream.NewWithAPIPrefix(js.Conn(), o.APIPrefix, opts...)
	default:
		pub, err = jetstream.New(js.Conn(), opts...)
	}
	if err != nil {
		return js
	}
	return pub
}

// Bucket is the bucket of that name over js, as NewBucket returns it but sharing with
// s's blob service what either lately wrote or read of its blobs (recent): the inputs a
// router stores are read through the service by a node a moment later, and the outputs
// a node stores through it by the router. Before s starts, or after it closes, the
// bucket remembers alone.
func (s *Server) Bucket(js jetstream.JetStream, name string) *Bucket {
	b := NewBucket(js, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs != nil {
		b.recent = s.blobs.recent
	}
	return b
}

func (b *Bucket) open(ctx context.Context) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.obs == nil {
		obs, err := openBucket(ctx, b.js, b.name)
		if err != nil {
			return nil, err
		}
		// The object store asked for the stream's info but keeps it to itself.
		st, err := obs.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: bucket %s: %v", ErrBlob, b.name, err)
		}
		b.obs, b.replicated = obs, st.Replicas() > 1
	}
	return b.obs, nil
}

// PutBlob stores data in the object-store bucket under its hex sha256 and returns its
// digest (Bucket.Put, opening the bucket for this one put).
func PutBlob(ctx context.Context, js jetstream.JetStream, bucket string, data []byte) (string, error) {
	b := NewBucket(js, bucket)
	defer b.js.CleanupPublisher() // its reply subscription, made for this one put
	return b.Put(ctx, data)
}

// PutBlobFrom is Bucket.PutFrom, opening the bucket for this one put.
func PutBlobFrom(ctx context.Context, js jetstream.JetStream, bucket, digest string, size int64, r io.Reader) error {
	b := NewBucket(js, bucket)
	defer b.js.CleanupPublisher()
	return b.PutFrom(ctx, digest, size, r)
}

// GetBlob is Bucket.Get, opening the bucket for this one read.
func GetBlob(ctx context.Context, js jetstream.JetStream, bucket, digest string) ([]byte, error) {
	return NewBucket(js, bucket).Get(ctx, digest)
}

// Put stores data under its hex sha256 and returns its digest. Content that is already
// stored intact is not sent again.
func (b *Bucket) Put(ctx context.Context, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	return DigestPrefix + hex.EncodeToString(sum[:]), b.put(ctx, sum, data)
}

// PutHashed stores data under digest, which the caller computed from data, or checked
// data against, itself: data is not hashed again, where PutFrom hashes every byte. So
// only bytes this process has hashed come here; bytes as a consumer or a participant
// sent them, unchecked, go through PutFrom. Content that is already stored intact is
// not sent again.
func (b *Bucket) PutHashed(ctx context.Context, digest string, data []byte) error {
	sum, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	return b.put(ctx, sum, data)
}

// put stores data, which hashes to sum, under its name.
func (b *Bucket) put(ctx context.Context, sum [32]byte, data []byte) error {
	obs, err := b.open(ctx)
	if err != nil {
		return err
	}
	name := hex.EncodeToString(sum[:])
	if len(data) <= objectChunk {
		_, err = b.recent.put(ctx, b.js, b.key(name), b.name, name, sum, data)
		return err
	}
	return b.putLarge(ctx, obs, name, sum, int64(len(data)), bytes.NewReader(data))
}

// Has reports whether the bucket holds size bytes under digest, from the blob's metadata
// (what this process lately wrote or read of it, else the server's): nothing is fetched
// or hashed, so a reader still checks what it gets.
func (b *Bucket) Has(ctx context.Context, digest string, size int64) (bool, error) {
	sum, err := ParseDigest(digest)
	if err != nil {
		return false, err
	}
	name := hex.EncodeToString(sum[:])
	if b.recent.holds(b.key(name), sum, size) {
		return true, nil
	}
	obs, err := b.open(ctx)
	if errors.Is(err, ErrNotFound) {
		return false, nil // no bucket, so no blob
	}
	if err != nil {
		return false, err
	}
	present, _, err := storedIntact(ctx, b.js, obs, b.name, name, sum, size, b.replicated)
	return present, err
}

// key is name's key in the memory of what is stored (recent), which a Bucket may share
// with others.
func (b *Bucket) key(name string) string { return b.name + "/" + name }

// PutFrom streams size bytes from r into the bucket under digest, hashing them on the
// way, so memory stays within putWindow chunks (2 MiB) whatever the size. The name
// appears only once every byte has arrived and matched: on a mismatch
// (ErrDigestMismatch), a short read or a cancelled ctx nothing is kept. A name that
// already holds its content is left alone and r is not read. Only the router and its
// blob service write, so the metadata it checks for that can be trusted.
func (b *Bucket) PutFrom(ctx context.Context, digest string, size int64, r io.Reader) error {
	sum, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrBlob, size)
	}
	obs, err := b.open(ctx)
	if err != nil {
		return err
	}
	name := hex.EncodeToString(sum[:])
	if size <= objectChunk {
		if b.recent.holds(b.key(name), sum, size) {
			return nil // before reading r: content stored lately is not sent again
		}
		data, err := readChecked(r, sum, size)
		if err != nil {
			return err
		}
		_, err = b.recent.put(ctx, b.js, b.key(name), b.name, name, sum, data)
		return err
	}
	return b.putLarge(ctx, obs, name, sum, size, checked(r, sum, size))
}

// putLarge stores size bytes of r, more than objectChunk, under name unless it holds
// them intact already; r yields exactly size bytes hashing to sum, or fails (see
// putObject).
func (b *Bucket) putLarge(ctx context.Context, obs jetstream.ObjectStore, name string, sum [32]byte, size int64, r io.Reader) error {
	present, prev, err := storedIntact(ctx, b.js, obs, b.name, name, sum, size, b.replicated)
	if err != nil || present {
		return err
	}
	info, err := putObject(ctx, b.js, b.name, name, sum, size, r, prev)
	if err == nil {
		b.recent.note(b.key(name), info)
	}
	return err
}

// readChecked reads exactly size bytes of r, which must hash to sum (ErrDigestMismatch).
//
// Its callers read small blobs, so the buffer is sized at once for the declared size,
// trusted up to objectChunk, and one byte more for the read that finds the end: reading
// a 16 KiB output as io.ReadAll does, doubling from 512 bytes, allocated four times it.
func readChecked(r io.Reader, sum [32]byte, size int64) ([]byte, error) {
	cr := checked(r, sum, size)
	data := make([]byte, 0, min(max(size, 0), objectChunk)+1)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := cr.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		switch {
		case err == io.EOF:
			return data, nil
		case err != nil && !errors.Is(err, ErrDigestMismatch):
			return data, fmt.Errorf("%w: %w", ErrBlob, err)
		case err != nil:
			return data, err
		}
	}
}

// putSmall stores data, at most objectChunk bytes hashing to sum, under name unless the
// name holds it already (present). Most blobs are new, so it writes first and asks
// after: the chunk, then the metadata on condition that the name has none yet. Only when
// the name exists does it read what the name holds, from the stream's leader, whose
// refusal says it exists (a replica behind it may not know yet: blobleader.go); if that
// is data intact, the chunk just written goes and nothing else changes, else the name is
// written over and what it held goes. The check before the write that PutFrom makes for
// larger blobs (storedIntact) was a round trip and a JSON decode for every input a
// router stored, 3% of a busy devnet's CPU, and two writers of one new name could both
// pass it, one leaving a chunk nothing named. Content put again soon is better caught
// before any of this (recent). It returns the metadata the name holds once it is done.
func putSmall(ctx context.Context, js jetstream.JetStream, bucket, name string, sum [32]byte, data []byte) (info *jetstream.ObjectInfo, present bool, err error) {
	info, err = putChunk(ctx, js, bucket, name, sum, data, nil, true)
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence &&
		apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) { // the latter from a replicated stream
		return info, false, wrapPut(bucket, name, err)
	}
	info, err = leaderInfo(ctx, js, bucket, name)
	present, prev, err := intact(info, err, name, sum, int64(len(data)))
	if err != nil || present {
		return info, present, err
	}
	info, err = putChunk(ctx, js, bucket, name, sum, data, prev, false)
	return info, false, wrapPut(bucket, name, err)
}

// wrapPut is a failed write's error, nil for none.
func wrapPut(bucket, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: put %s/%s: %w", ErrBlob, bucket, name, err)
}

// putObject stores size bytes of r under name and returns the metadata it wrote; prev is
// what the name held before (nil: nothing), whose chunks go once the new ones are in. r
// yields exactly size bytes that hash to sum or ends in an error, which leaves nothing
// stored: a checkedReader (see PutFrom), unless this process hashed the bytes itself. An
// object of one chunk is written by putChunk, a larger one by putChunks.
func putObject(ctx context.Context, js jetstream.JetStream, bucket, name string, sum [32]byte, size int64, r io.Reader, prev *jetstream.ObjectInfo) (*jetstream.ObjectInfo, error) {
	var info *jetstream.ObjectInfo
	var err error
	if size <= objectChunk {
		var data []byte
		if data, err = io.ReadAll(r); err == nil {
			info, err = putChunk(ctx, js, bucket, name, sum, data, prev, false)
		}
	} else {
		info, err = putChunks(ctx, js, bucket, name, sum, size, r, prev)
	}
	switch {
	case errors.Is(err, ErrDigestMismatch):
		return nil, err
	case err != nil:
		return nil, wrapPut(bucket, name, err)
	}
	return info, nil
}

// newObjectInfo is the metadata of an object of size bytes hashing to sum, its chunks
// stored under id.
func newObjectInfo(bucket, name, id string, sum [32]byte, size int64) *jetstream.ObjectInfo {
	return &jetstream.ObjectInfo{ObjectMeta: objectMeta(name, size), Bucket: bucket, NUID: id,
		Size: uint64(size), Chunks: uint32((size + objectChunk - 1) / objectChunk), Digest: objectDigest(sum)}
}

// putChunk writes data, whose sha256 is sum and which is at most objectChunk bytes, as an
// object of one chunk, as the object store's Put would: the chunk under a new id, then
// the metadata that names it (putMeta). Two acknowledged publishes (publish) over js's
// long-lived reply subscription, where Put opens a JetStream context of its own for every
// object, and with it a reply subscription the server files and drops, and reads the
// metadata again. onlyNew is putMeta's. It returns the metadata it wrote.
func putChunk(ctx context.Context, js jetstream.JetStream, bucket, name string, sum [32]byte, data []byte, prev *jetstream.ObjectInfo, onlyNew bool) (*jetstream.ObjectInfo, error) {
	id := nuid.Next()
	chunks := chunkSubject(bucket, id)
	if len(data) > 0 {
		if _, err := publish(ctx, js, &nats.Msg{Subject: chunks, Data: data}); err != nil {
			purgeChunks(ctx, js, bucket, chunks) // a chunk no metadata names is never read
			return nil, err
		}
	}
	return putMeta(ctx, js, newObjectInfo(bucket, name, id, sum, int64(len(data))), prev, onlyNew)
}

// putWindow is how many of an object's chunks putChunks has sent and not yet seen
// acknowledged (2 MiB).
const putWindow = 16

// putChunks writes an object of more than one chunk, size bytes of r (see putObject), as
// the object store's Put would, but for two flaws of that Put (nats.go v1.55). It sends
// every chunk in the one message, over one buffer, while a chunk whose publish met no
// responders (a stream electing a leader) is sent again 250 ms later from that message:
// by then with a later chunk's bytes, and after it, so the object's chunks hash to
// something else than the digest its metadata names (the race detector found it). And it
// publishes the metadata without waiting for the chunks' acknowledgements, so a chunk
// refused leaves a name whose chunks are not all there. Here each chunk has a message and
// a buffer of its own and is not sent again: a chunk that fails fails the object, whose
// chunks are purged once every publish has ended, and its writer may write it again. The
// metadata goes once every chunk is stored.
//
// A failed publish fails the object as soon as it is seen, whatever the order of the
// publishes' outcomes. A stream that loses its leader refuses the publishes after at
// once, while the acknowledgement of one in flight as it went may never come, but at
// the publisher's timeout (ackTimeout): waiting for it, the writer learnt of the failure
// only then, and a node sending an upload had timed out first. So the purge after a
// failed publish waits for the rest in the background.
func putChunks(ctx context.Context, js jetstream.JetStream, bucket, name string, sum [32]byte, size int64, r io.Reader, prev *jetstream.ObjectInfo) (*jetstream.ObjectInfo, error) {
	id := nuid.Next()
	chunks := chunkSubject(bucket, id)
	outcomes := make(chan error, putWindow) // each publish's, nil when stored; never more in flight
	inflight := 0
	// settle takes the outcomes that have come, and waits for more while over keep
	// publishes are in flight. It says the first failure it takes.
	settle := func(keep int) error {
		for {
			var err error
			if inflight > keep {
				select {
				case err = <-outcomes:
				case <-ctx.Done():
					return ctx.Err()
				}
			} else {
				select {
				case err = <-outcomes:
				default:
					return nil
				}
			}
			inflight--
			if err != nil {
				return err
			}
		}
	}
	// drain waits for every publish in flight to end, or for done to.
	drain := func(done <-chan struct{}) {
		for ; inflight > 0; inflight-- {
			select {
			case <-outcomes:
			case <-done:
				return
			}
		}
	}
	fail := func(err error) (*jetstream.ObjectInfo, error) {
		drain(ctx.Done()) // what is in flight is stored, or fails, before the purge
		purgeChunks(ctx, js, bucket, chunks)
		return nil, err
	}
	// abandon is fail for a failed publish, or for ctx ended, told without waiting.
	abandon := func(err error) (*jetstream.ObjectInfo, error) {
		go func() {
			drain(nil)
			purgeChunks(context.WithoutCancel(ctx), js, bucket, chunks)
		}()
		return nil, err
	}
	for left := size; left > 0; {
		data := make([]byte, min(left, objectChunk))
		if _, err := io.ReadFull(r, data); err != nil {
			return fail(err)
		}
		left -= int64(len(data))
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: chunks, Data: data}, jetstream.WithRetryAttempts(0))
		if err != nil {
			return fail(err)
		}
		inflight++
		go awaitAck(f, outcomes)
		if err := settle(putWindow - 1); err != nil {
			return abandon(err)
		}
	}
	// r's verdict on the bytes, at their end: io.EOF when they hash to sum.
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%w: more than the %d bytes declared", ErrDigestMismatch, size)
		}
		return fail(err)
	}
	if err := settle(0); err != nil {
		return abandon(err)
	}
	return putMeta(ctx, js, newObjectInfo(bucket, name, id, sum, size), prev, false)
}

// awaitAck sends f's outcome to outcomes, nil when its message is stored. Every outcome
// comes, at the latest at the publisher's timeout.
func awaitAck(f jetstream.PubAckFuture, outcomes chan<- error) {
	select {
	case <-f.Ok():
		outcomes <- nil
	case err := <-f.Err():
		outcomes <- err
	}
}

// putMeta writes info, the metadata that names an object's chunks, stored already, and
// then purges prev's chunks. With onlyNew, the metadata is written only if the name has
// none, else the stream refuses it (JSErrCodeStreamWrongLastSequence, or its Constant
// variant from a replicated stream) and the object's chunks are purged.
func putMeta(ctx context.Context, js jetstream.JetStream, info *jetstream.ObjectInfo, prev *jetstream.ObjectInfo, onlyNew bool) (*jetstream.ObjectInfo, error) {
	meta := nats.NewMsg(metaSubject(info.Bucket, info.Name))
	meta.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	if onlyNew {
		meta.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	meta.Data, _ = json.Marshal(info)
	if _, err := publish(ctx, js, meta); err != nil {
		// Only a refusal says the metadata is not stored. Another failure (no answer in
		// time, the context ending) may have lost the acknowledgement of metadata that is
		// stored, or will be: purging the chunks it names would leave a blob that reads
		// "not found" for good, and a put again that finds the name intact. Unnamed
		// chunks left behind cost their bytes only.
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			purgeChunks(ctx, js, info.Bucket, chunkSubject(info.Bucket, info.NUID))
		}
		return nil, err
	}
	if prev != nil {
		purgeChunks(ctx, js, info.Bucket, chunkSubject(info.Bucket, prev.NUID))
	}
	return info, nil
}

// publish stores m and waits for its acknowledgement, or for ctx to end, as
// js.PublishMsg does, but sent asynchronously: the acknowledgements of all of js's
// publishes come to one subscription, which decodes them, where PublishMsg has each
// waiting goroutine decode its own. The two publishes of a put cost 7% less CPU so, and
// over a fifth less with eight puts under way (BenchmarkPutPublishes); a whole put of
// 4 KiB, 7% and 17%. Each still waits for the one before it: the metadata must never be
// stored without its chunk, and a chunk refused (a full bucket) with its metadata sent
// behind it could leave exactly that. The ack of a publish whose ctx ends first is
// handled when it comes, or dropped once js's async timeout passes (publisher).
func publish(ctx context.Context, js jetstream.JetStream, m *nats.Msg) (*jetstream.PubAck, error) {
	f, err := js.PublishMsgAsync(m)
	if err != nil {
		return nil, err
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// purgeChunks drops the chunks on subject, as far as it can: what it leaves, no
// metadata names.
func purgeChunks(ctx context.Context, js jetstream.JetStream, bucket, subject string) {
	if st, err := js.Stream(ctx, objectStream(bucket)); err == nil {
		_ = st.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
}

// chunkSubject is where the object store keeps the chunks of the object whose id is nuid.
func chunkSubject(bucket, nuid string) string { return "$O." + bucket + ".C." + nuid }

// metaSubject is where the object store keeps the metadata of the object name.
func metaSubject(bucket, name string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// directSubject is where js's server takes direct gets of the bucket's messages.
func directSubject(js jetstream.JetStream, bucket string) string {
	return apiPrefix(js) + "DIRECT.GET." + objectStream(bucket)
}

// objectChunk is the object store's default chunk size, the most a chunk of ours holds.
const objectChunk = 128 << 10

// objectMeta names an object of size bytes, and records its chunks' size as no larger
// than the object (when the object store's Put wrote our objects, it read into a buffer
// of that size, and at the default a blob of a few KiB allocated 128 KiB). Chunk size is
// the writer's choice; a reader follows the chunks as stored, whatever their size.
func objectMeta(name string, size int64) jetstream.ObjectMeta {
	return jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(min(max(size, 1), objectChunk))}}
}

// storedIntact reports whether name already holds size bytes hashing to sum, and what it
// holds (nil: nothing). On a replicated bucket a miss is asked again of the leader
// (objectInfo): a replica behind it would have content stored intact written again, and
// the chunks it held left for nothing to name.
func storedIntact(ctx context.Context, js jetstream.JetStream, obs jetstream.ObjectStore, bucket, name string, sum [32]byte, size int64, replicated bool) (bool, *jetstream.ObjectInfo, error) {
	info, err := objectInfo(ctx, js, obs, bucket, name, replicated)
	return intact(info, err, name, sum, size)
}

// intact is storedIntact for name's metadata as read (info), or the error reading it.
func intact(info *jetstream.ObjectInfo, err error, name string, sum [32]byte, size int64) (bool, *jetstream.ObjectInfo, error) {
	switch {
	case err == nil:
		return info.Size == uint64(size) && info.Digest == objectDigest(sum), info, nil
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return false, nil, nil
	}
	return false, nil, fmt.Errorf("%w: %s: %v", ErrBlob, name, err)
}

// checkedReader passes exactly size bytes of r through and ends in io.EOF only if they
// hash to sum; anything else is an error, which makes the object store drop the upload.
type checkedReader struct {
	r    io.Reader
	size int64
	sum  [32]byte
	h    hash.Hash
	n    int64
}

// checkSum is nil if data hashes to sum, else ErrDigestMismatch, as a checkedReader over
// data would end.
func checkSum(data []byte, sum [32]byte) error {
	return mismatch(int64(len(data)), sha256.Sum256(data), sum)
}

// mismatch is the error for n bytes sent that hash to got, filed under want; nil if got
// is want.
func mismatch(n int64, got, want [32]byte) error {
	if got == want {
		return nil
	}
	return fmt.Errorf("%w: the %d bytes sent hash to %s%x, not the digest they were filed under", ErrDigestMismatch, n, DigestPrefix, got)
}

// checked is r read through a checkedReader.
func checked(r io.Reader, sum [32]byte, size int64) *checkedReader {
	return &checkedReader{r: r, size: size, sum: sum, h: sha256.New()}
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.n == c.size {
		if err := mismatch(c.n, [32]byte(c.h.Sum(nil)), c.sum); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.size-c.n {
		p = p[:c.size-c.n]
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF && c.n < c.size {
		return n, fmt.Errorf("%w: %d of the %d bytes declared arrived", ErrDigestMismatch, c.n, c.size)
	}
	if err == io.EOF {
		err = nil // the check above runs on the next call
	}
	return n, err
}

// Get fetches the blob with the given digest and checks that it hashes to that digest
// (ErrDigestMismatch otherwise). A missing blob or bucket is ErrNotFound.
//
// It reads chunks with batched direct gets, as the blob service does for participants,
// rather than jetstream's ObjectStore.Get; on a replicated bucket, what they miss is
// asked of the stream's leader before it is ErrNotFound, as the service asks it. The
// blob's metadata, which names its chunks, is what this process lately wrote or read of
// it (recent), if anything, else read from the server; if remembered metadata names
// chunks that are gone, or hash to something else, it is forgotten and read afresh.
func (b *Bucket) Get(ctx context.Context, digest string) ([]byte, error) {
	sum, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	name := hex.EncodeToString(sum[:])
	obs, err := b.open(ctx)
	if err != nil {
		return nil, err
	}
	key := b.key(name)
	if info := b.recent.info(key); info != nil {
		data, err := b.read(ctx, name, sum, info)
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrDigestMismatch) {
			return data, err
		}
		b.recent.forget(key, info) // written over, or deleted, since
	}
	info, err := objectInfo(ctx, b.js, obs, b.name, name, b.replicated)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s in bucket %s", ErrNotFound, digest, b.name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %v", ErrBlob, b.name, name, err)
	}
	if info.Size > math.MaxInt || info.NUID == "" {
		return nil, fmt.Errorf("%w: %s/%s: implausible metadata (size %d)", ErrBlob, b.name, name, info.Size)
	}
	data, err := b.read(ctx, name, sum, info)
	if err == nil {
		b.recent.note(key, info)
	}
	return data, err
}

// read fetches the chunks info names and checks that they hash to sum.
func (b *Bucket) read(ctx context.Context, name string, sum [32]byte, info *jetstream.ObjectInfo) ([]byte, error) {
	bucket := b.name
	api := directSubject(b.js, bucket)
	data, err := readChunks(ctx, b.js.Conn(), bucket+"/"+name, info.Size, info.Chunks, func(seq uint64, batch int) (string, []byte) {
		body, _ := json.Marshal(directGetRequest{Seq: seq, NextFor: chunkSubject(bucket, info.NUID), Batch: batch, MaxBytes: batchBytes})
		return api, body
	})
	if errors.Is(err, ErrNotFound) && b.replicated {
		data, err = leaderChunks(ctx, b.js, bucket, name, info)
	}
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(data) != sum {
		return nil, fmt.Errorf("%w: %s/%s holds %d bytes that hash to %s", ErrDigestMismatch, bucket, name, len(data), Digest(data))
	}
	return data, nil
}

func openBucket(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.ObjectStore, error) {
	obs, err := js.ObjectStore(ctx, bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, fmt.Errorf("%w: no bucket %s", ErrNotFound, bucket)
	case err != nil:
		return nil, fmt.Errorf("%w: open bucket %s: %v", ErrBlob, bucket, err)
	}
	return obs, nil
}

// objectDigest is the object store's own notation for a sha256.
func objectDigest(sum [32]byte) string {
	return "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:])
}

// directGetRequest is the server's JSApiMsgGetRequest, batch form.
type directGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// readChunks streams an object's chunks in batches of up to batchBytes, each batch one
// request answered by a run of messages and an end-of-batch status. request names where
// to send the request for the batch that starts at seq; a batch of 0 asks for the one
// chunk at seq alone, which is how an object of one chunk is read: one request over the
// connection's long-lived reply inbox, where a batch needs an inbox of its own (a
// subscription the server files and drops, for every read).
func readChunks(ctx context.Context, nc *nats.Conn, name string, size uint64, chunks uint32, request func(seq uint64, batch int) (string, []byte)) ([]byte, error) {
	if chunks == 1 {
		subject, body := request(0, 0)
		ctx, cancel := context.WithTimeout(ctx, batchTimeout)
		defer cancel()
		m, err := nc.RequestWithContext(ctx, subject, body)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBlob, name, err)
		}
		data, err := chunkOf(m)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %w", name, err)
		case uint64(len(data)) > size:
			return nil, fmt.Errorf("%w: %s: its chunk exceeds the recorded size %d", ErrDigestMismatch, name, size)
		}
		return data, nil
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%w: subscribe: %v", ErrBlob, err)
	}
	defer sub.Unsubscribe()

	// The size came over the network: trust it only as far as a bounded preallocation.
	data := make([]byte, 0, min(size, maxPrealloc))
	var seq uint64
	for got := 0; got < int(chunks); {
		subject, body := request(seq, int(chunks)-got)
		if err := nc.PublishRequest(subject, inbox, body); err != nil {
			return nil, fmt.Errorf("%w: request chunks: %v", ErrBlob, err)
		}
		n, next, err := readBatch(ctx, sub, &data, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %s: %d of %d chunks stored", ErrNotFound, name, got, chunks)
		}
		got += n
		seq = next
	}
	return data, nil
}

// readBatch appends one batch's chunks to data and returns how many arrived
// and the sequence to continue from.
func readBatch(ctx context.Context, sub *nats.Subscription, data *[]byte, size uint64) (n int, next uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout) // a lost message fails one step, not the job's whole deadline
	defer cancel()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return n, next, fmt.Errorf("%w: waiting for chunks: %w", ErrBlob, err)
		}
		if end, err := chunkStatus(m); end || err != nil {
			return n, next, err
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return n, next, fmt.Errorf("%w: chunk without sequence", ErrBlob)
		}
		if uint64(len(*data)+len(m.Data)) > size {
			return n, next, fmt.Errorf("%w: chunks exceed the recorded size %d", ErrDigestMismatch, size)
		}
		*data = append(*data, m.Data...)
		n, next = n+1, seq+1
	}
}

// isChunk reports whether m is a direct get's answer (a chunk, or a status in its place)
// rather than the blob service's own reply.
func isChunk(m *nats.Msg) bool {
	return m.Header.Get("Nats-Sequence") != "" || m.Header.Get("Status") != ""
}

// chunkStatus reads a direct get's status: end for the end of a batch or of the chunks
// (204, 404), an error for a refusal or a failure; neither for a chunk.
func chunkStatus(m *nats.Msg) (end bool, err error) {
	switch status := m.Header.Get("Status"); status {
	case "":
		return false, nil
	case "204", "404":
		return true, nil
	case "403":
		return true, fmt.Errorf("%w: %s", ErrForbidden, m.Header.Get("Description"))
	default:
		return true, fmt.Errorf("%w: direct get: %s %s", ErrBlob, status, m.Header.Get("Description"))
	}
}

// chunkOf is the chunk a direct get of one chunk answered with.
func chunkOf(m *nats.Msg) ([]byte, error) {
	end, err := chunkStatus(m)
	switch {
	case err != nil:
		return nil, err
	case end:
		return nil, fmt.Errorf("%w: its chunk is not stored", ErrNotFound)
	}
	return m.Data, nil
}

// apiPrefix is the JetStream API prefix js sends requests to.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix == "":
		return jetstream.DefaultAPIPrefix
	case strings.HasSuffix(o.APIPrefix, "."):
		return o.APIPrefix
	}
	return o.APIPrefix + "."
}
