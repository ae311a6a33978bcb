package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"
)

// BlobAccess decides what a participant may do with blobs; the router implements it
// from the jobs it runs. Both methods are called from server goroutines, concurrently,
// for every request, so a right withdrawn takes effect at the next request.
type BlobAccess interface {
	// MayRead reports whether participant id may read the blob with this digest.
	MayRead(id, digest string) error
	// MayWrite reports whether participant id may store size bytes under digest as
	// work for job.
	MayWrite(id, job, digest string, size int64) error
}

// The blob service's verbs, published by a participant in its own namespace
// (omni.node.<id>.blob.<server>.<verb>), so the subject authenticates the requester; the
// server token picks the one server of a cluster whose router granted the rights.
const (
	blobVerbStat  = "stat"  // {bucket, digest} → blobReply{size, chunks}
	blobVerbRead  = "read"  // {bucket, digest, seq, batch} → chunks by direct get, then 204; batch 0: the one chunk at seq, no 204
	blobVerbGet   = "get"   // {bucket, digest, fresh} → a one-chunk blob's chunk by direct get; any other, as stat answers
	blobVerbPut   = "put"   // {bucket, job, digest, size} → blobReply{present or upload}
	blobVerbStore = "store" // header blobRequestHeader {bucket, job, digest, size}, body: the whole blob (≤ uploadChunk) → blobReply{present or stored}
	blobVerbData  = "data"  // omni.node.<id>.blob.<server>.data.<upload>: one chunk → blobReply
)

// blobRequestHeader carries a store's request, whose body is the blob itself.
const blobRequestHeader = "Omni-Blob-Request"

const (
	// uploadChunk is the most a participant sends in one data message, well under
	// the server's 1 MiB max_payload.
	uploadChunk = 256 << 10
	// uploadWindow is how many chunks a participant may send ahead of their acks;
	// the service holds at most this many per upload.
	uploadWindow = 4
	// uploadIdle aborts an upload that receives no chunk for this long.
	uploadIdle = 30 * time.Second
	// maxUploadsPerParticipant bounds the memory one participant can tie up.
	maxUploadsPerParticipant = 4
)

// Error codes in a blob service reply; the client maps each to its sentinel.
const (
	codeNotFound  = "not_found"
	codeForbidden = "forbidden"
	codeInvalid   = "invalid"
	codeMismatch  = "mismatch"
	codeBusy      = "busy"
	// codeUnavailable: the store's stream did not answer, or lost a publish's
	// acknowledgement, as while its servers elect a leader (forming); the same request
	// may succeed a moment later.
	codeUnavailable = "unavailable"
	codeFailed      = "failed"
)

type blobRequest struct {
	Bucket string `json:"bucket"`
	Digest string `json:"digest"`
	Job    string `json:"job,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Batch  int    `json:"batch,omitempty"`
	// Fresh asks a get to read the blob's metadata from JetStream, not from what the
	// service remembers (recent): the metadata it answered from named chunks that were
	// gone or held other bytes.
	Fresh bool `json:"fresh,omitempty"`
}

// blobReply answers stat, put and data requests.
type blobReply struct {
	Size    uint64 `json:"size,omitempty"`
	Chunks  uint32 `json:"chunks,omitempty"`
	Present bool   `json:"present,omitempty"` // put: already stored, send nothing
	Upload  string `json:"upload,omitempty"`  // put: the upload to send chunks to
	Stored  bool   `json:"stored,omitempty"`  // data: the last chunk was checked and stored
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
}

// blobService serves participants' blob requests with the server's internal (full)
// rights: it checks each request against BlobAccess, reads only the chunks of the object
// asked for, and files an upload under its digest only after hashing every byte.
type blobService struct {
	srv    *Server
	name   string // the server token in the subjects it answers (ServerOptions.Name)
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// relayed: direct gets are answered through the service's own inbox (relay), for in
	// a cluster the replica that answers may sit on a third server.
	relayed bool
	// replicated: each bucket is held by several servers, some maybe behind its leader,
	// so a miss is asked again of the leader before it is "not found" (blobleader.go).
	replicated bool

	readers chan struct{} // one per stat or read answered at once (concurrently)

	mu      sync.Mutex
	uploads map[string]*upload               // upload id → upload
	writing map[string]bool                  // bucket/name being written, so one name has one writer
	buckets map[string]jetstream.ObjectStore // opened once each: opening asks the server
	recent  *recent                          // bucket/name → its metadata, as lately written or read
	idle    time.Duration                    // how long an upload waits for a chunk before it ends: uploadIdle, shorter in tests
}

// maxConcurrentReads bounds the stats and reads the service answers at once. Each may ask
// JetStream for the object's metadata and wait for the answer; answered one at a time,
// as a subscription delivers them, a busy router's nodes and validators queued for their
// inputs behind each other (150 ms a fetch with 500 jobs in flight).
const maxConcurrentReads = 64

func (s *Server) startBlobService(ctx context.Context) error {
	nc, err := s.connectInProcess(ctx, s.ns, s.internal, "omnisync-blob-service")
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("%w: %v", ErrServer, err)
	}
	b := newBlobService(s, nc, js)
	if err := b.subscribe(); err != nil {
		b.close()
		return err
	}
	s.blobs = b
	return nil
}

// newBlobService is s's blob service over nc and js, which it owns from now on, and
// works through a publisher like js; it answers nothing until it subscribes.
func newBlobService(s *Server, nc *nats.Conn, js jetstream.JetStream) *blobService {
	ctx, cancel := context.WithCancel(context.Background())
	return &blobService{srv: s, name: s.opts.Name, nc: nc, js: publisher(js, ackTimeout), log: s.log.With("component", "blob-service"),
		ctx: ctx, cancel: cancel, uploads: map[string]*upload{}, writing: map[string]bool{},
		buckets: map[string]jetstream.ObjectStore{}, recent: newRecent(time.Now),
		readers: make(chan struct{}, maxConcurrentReads), idle: uploadIdle, relayed: s.opts.Cluster != nil, replicated: s.Replicas() > 1}
}

// subscribe starts answering participants' requests to b.name.
func (b *blobService) subscribe() error {
	// Stats and reads are answered concurrently; puts and an upload's chunks stay in the
	// order they came, one subscription each.
	for verb, h := range map[string]func(id string, m *nats.Msg){
		blobVerbStat: b.concurrently(b.stat), blobVerbRead: b.concurrently(b.read), blobVerbGet: b.concurrently(b.get),
		blobVerbStore: b.concurrently(b.store), blobVerbPut: b.put,
	} {
		if _, err := b.nc.Subscribe(NodeSubjectPrefix+"*.blob."+b.name+"."+verb, b.guard(h)); err != nil {
			return fmt.Errorf("%w: blob service: %v", ErrServer, err)
		}
	}
	if _, err := b.nc.Subscribe(NodeSubjectPrefix+"*.blob."+b.name+"."+blobVerbData+".*", b.guard(b.data)); err != nil {
		return fmt.Errorf("%w: blob service: %v", ErrServer, err)
	}
	if err := b.nc.Flush(); err != nil {
		return fmt.Errorf("%w: blob service: %v", ErrServer, err)
	}
	return nil
}

func (b *blobService) close() {
	b.cancel()
	b.wg.Wait()
	b.nc.Close()
}

// guard takes the requester's id from the subject and drops any request whose reply
// subject is not that requester's own inbox: the service answers with full rights, so
// it must never publish where the requester could not.
func (b *blobService) guard(h func(id string, m *nats.Msg)) nats.MsgHandler {
	return func(m *nats.Msg) {
		rest := strings.TrimPrefix(m.Subject, NodeSubjectPrefix)
		id, _, _ := strings.Cut(rest, ".")
		if !b.srv.auth.owns(id, m.Reply) && !b.inboxOf(id, m.Reply) {
			b.log.Warn("blob request dropped: reply subject is not the requester's inbox", "id", id, "reply", m.Reply)
			return
		}
		h(id, m)
	}
}

// concurrently answers each request from its own goroutine, at most maxConcurrentReads at
// once; beyond that the subscription waits, as it did for every request before.
func (b *blobService) concurrently(h func(id string, m *nats.Msg)) func(id string, m *nats.Msg) {
	return func(id string, m *nats.Msg) {
		select {
		case b.readers <- struct{}{}:
		case <-b.ctx.Done():
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() { <-b.readers }()
			h(id, m)
		}()
	}
}

// bucket opens a bucket once and keeps it.
func (b *blobService) bucket(name string) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	obs, ok := b.buckets[name]
	b.mu.Unlock()
	if ok {
		return obs, nil
	}
	obs, err := openBucket(b.ctx, b.js, name)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.buckets[name] = obs
	b.mu.Unlock()
	return obs, nil
}

// inboxOf reports whether reply lies in the inbox of a key whose id is id (IDOf): so
// a participant connected to another server of the cluster is answered in its own inbox
// and nowhere else.
func (b *blobService) inboxOf(id, reply string) bool {
	idOf := b.srv.opts.IDOf
	rest, ok := strings.CutPrefix(reply, "_INBOX.")
	if idOf == nil || !ok {
		return false
	}
	nkey, _, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(nkey))
	return err == nil && len(raw) == ed25519.PublicKeySize && idOf(ed25519.PublicKey(raw)) == id
}

func (b *blobService) respond(m *nats.Msg, r blobReply) {
	body, _ := json.Marshal(r)
	if err := m.Respond(body); err != nil {
		b.log.Debug("blob reply", "err", err)
	}
}

// codedError is a refusal with the code its reply carries.
type codedError struct {
	code string
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

func refuse(code string, format string, args ...any) error {
	return codedError{code, fmt.Errorf(format, args...)}
}

func codeOf(err error) string {
	var ce codedError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case forming(err) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return codeUnavailable
	}
	return codeFailed
}

// fail answers a stat, put or data request with err and its code.
func (b *blobService) fail(m *nats.Msg, err error) {
	b.respond(m, blobReply{Error: err.Error(), Code: codeOf(err)})
}

// status answers a read with err as a status message, the form JetStream's own
// end-of-batch and errors take, so the reader handles all of them in one place.
func (b *blobService) status(m *nats.Msg, err error) {
	code := map[string]string{codeInvalid: "400", codeForbidden: "403", codeNotFound: "404"}[codeOf(err)]
	if code == "" {
		code = "503"
	}
	r := nats.NewMsg(m.Reply)
	r.Header.Set("Status", code)
	r.Header.Set("Description", err.Error())
	if err := b.nc.PublishMsg(r); err != nil {
		b.log.Debug("blob status", "err", err)
	}
}

// request decodes a request (m's body, or for a store its header) and checks its bucket
// and digest; it returns the object's name.
func (b *blobService) request(m *nats.Msg) (blobRequest, string, error) {
	var req blobRequest
	body := m.Data
	if strings.HasSuffix(m.Subject, "."+blobVerbStore) {
		body = []byte(m.Header.Get(blobRequestHeader))
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, "", refuse(codeInvalid, "malformed blob request: %v", err)
	}
	if !slices.Contains(b.srv.opts.Buckets, req.Bucket) {
		return req, "", refuse(codeNotFound, "no bucket %q", req.Bucket)
	}
	sum, err := ParseDigest(req.Digest)
	if err != nil {
		return req, "", codedError{codeInvalid, err}
	}
	return req, hex.EncodeToString(sum[:]), nil
}

// lookup reads an object's metadata. Only this service and the router write metadata,
// so it can be trusted. GetInfo reads it by direct get, which a replica behind the
// leader may answer: on a replicated bucket a miss is asked again of the leader.
func (b *blobService) lookup(bucket, name string) (*jetstream.ObjectInfo, error) {
	obs, err := b.bucket(bucket)
	if err != nil {
		return nil, refuse(codeNotFound, "%w", err)
	}
	info, err := objectInfo(b.ctx, b.js, obs, bucket, name, b.replicated)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, refuse(codeNotFound, "%w: %s%s", ErrNotFound, DigestPrefix, name)
	}
	return info, err
}

func (b *blobService) mayRead(id, digest string) error {
	if b.srv.opts.Access == nil {
		return refuse(codeForbidden, "this server grants no blob rights")
	}
	if err := b.srv.opts.Access.MayRead(id, digest); err != nil {
		return codedError{codeForbidden, err}
	}
	return nil
}

// readable checks a stat, get or read request and returns the object it may read. Its
// metadata is what the service lately wrote or read of it (recent), unless there is
// none or fresh or the request asks for it Fresh; then it is read from JetStream and
// remembered. A node or validator reads a blob moments after it was stored, the reads of
// a larger blob's batches follow its get, and each lookup is a JetStream request that
// loads the name's last message, often from disk. The grant is checked at every request
// all the same.
func (b *blobService) readable(id string, m *nats.Msg, fresh bool) (blobRequest, *jetstream.ObjectInfo, error) {
	req, name, err := b.request(m)
	if err != nil {
		return req, nil, err
	}
	if err := b.mayRead(id, req.Digest); err != nil {
		return req, nil, err
	}
	key := req.Bucket + "/" + name
	remembered := b.recent.info(key)
	if remembered != nil && !fresh && !req.Fresh {
		return req, remembered, nil
	}
	info, err := b.lookup(req.Bucket, name)
	if err != nil {
		if remembered != nil {
			b.recent.forget(key, remembered) // deleted, maybe: a store must not take it as present
		}
		return req, nil, err
	}
	b.recent.note(key, info)
	return req, info, nil
}

func (b *blobService) stat(id string, m *nats.Msg) {
	if _, info, err := b.readable(id, m, true); err != nil {
		b.fail(m, err)
	} else {
		b.respond(m, blobReply{Size: info.Size, Chunks: info.Chunks})
	}
}

// read answers with a batch of the object's chunks, straight from JetStream to the
// requester's inbox (directGet), named by the metadata the service remembers: mostly
// what the get before it used.
func (b *blobService) read(id string, m *nats.Msg) {
	req, info, err := b.readable(id, m, false)
	if err != nil {
		b.status(m, err)
		return
	}
	b.directGet(m, req.Bucket, info, req.Seq, min(req.Batch, int(info.Chunks)))
}

// get answers a blob of one chunk (every blob up to objectChunk the router or this
// service stored) with that chunk, so a participant fetches it in one round trip over its
// connection's long-lived reply inbox; any other it answers as stat does, and the
// participant reads the chunks. The metadata is what the service remembers unless the
// request asks for it fresh: the participant does when what it got was missing or hashed
// wrong (a name written over, or deleted, since it was remembered), and then the name is
// read as it now is.
func (b *blobService) get(id string, m *nats.Msg) {
	req, info, err := b.readable(id, m, false)
	switch {
	case err != nil:
		b.fail(m, err)
	case info.Chunks != 1:
		b.respond(m, blobReply{Size: info.Size, Chunks: info.Chunks})
	default:
		b.directGet(m, req.Bucket, info, 0, 0)
	}
}

// directGet has JetStream answer m's requester with the object's chunks from seq: batch
// of them, each a message, then a 204 status; or with batch 0, the one chunk at seq alone.
// The service names the chunk subject itself, so whatever sequence a requester asks to
// start from, it can only receive chunks of the object it may read.
func (b *blobService) directGet(m *nats.Msg, bucket string, info *jetstream.ObjectInfo, seq uint64, batch int) {
	get := directGetRequest{Seq: seq, NextFor: chunkSubject(bucket, info.NUID)}
	if batch > 0 {
		get.Batch, get.MaxBytes = batch, batchBytes
	}
	if b.relayed {
		b.wg.Add(1)
		go b.relay(m, bucket, get)
		return
	}
	body, _ := json.Marshal(get)
	if err := b.nc.PublishRequest(directSubject(b.js, bucket), m.Reply, body); err != nil {
		b.status(m, err)
	}
}

// relay fetches one batch (or one chunk, batch 0) into the service's own inbox and passes
// each message on to the requester. In a cluster the replica that answers a direct get may sit on a third
// server, which can hear of a participant's new inbox only after the request it relays
// (the interest and the request travel different routes): the batch would be lost. The
// service's inbox is made here, on the server that sends the request, so the interest
// goes first on the same route; and the participant's inbox reached this server before
// the participant's request did. A replica that answers with nothing may only be behind
// its leader: on a replicated bucket the leader is asked before the requester hears "not
// found" (chunkFromLeader).
func (b *blobService) relay(m *nats.Msg, bucket string, get directGetRequest) {
	defer b.wg.Done()
	inbox := b.nc.NewInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		b.status(m, err)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, _ := json.Marshal(get)
	if err := b.nc.PublishRequest(directSubject(b.js, bucket), inbox, body); err != nil {
		b.status(m, err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, batchTimeout)
	defer cancel()
	for first := true; ; first = false {
		r, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			b.status(m, err)
			return
		}
		status := r.Header.Get("Status")
		if first && status == "404" && b.replicated {
			b.chunkFromLeader(m, bucket, get)
			return
		}
		if err := b.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: r.Header, Data: r.Data}); err != nil {
			return
		}
		if get.Batch == 0 || status != "" { // 204 ends the batch; anything else ends it too
			return
		}
	}
}

// writable checks a put or store request (its bucket, digest and size, and the
// participant's right to write it) and, when asked to check, reports whether the name
// already holds its content intact: only trusted writers write metadata, so that check
// is sound.
func (b *blobService) writable(id string, m *nats.Msg, check bool) (req blobRequest, name string, sum [32]byte, present bool, prev *jetstream.ObjectInfo, err error) {
	req, name, err = b.request(m)
	switch {
	case err != nil:
	case req.Size < 0:
		err = refuse(codeInvalid, "negative size %d", req.Size)
	case b.srv.opts.Access == nil:
		err = refuse(codeForbidden, "this server grants no blob rights")
	default:
		if werr := b.srv.opts.Access.MayWrite(id, req.Job, req.Digest, req.Size); werr != nil {
			err = codedError{codeForbidden, werr}
		}
	}
	if err != nil {
		return
	}
	obs, err := b.bucket(req.Bucket)
	if err != nil {
		err = refuse(codeNotFound, "%w", err)
		return
	}
	sum, _ = ParseDigest(req.Digest)
	if check {
		present, prev, err = storedIntact(b.ctx, b.js, obs, req.Bucket, name, sum, req.Size, b.replicated)
	}
	return
}

// put opens an upload, or answers Present when the name already holds its content.
func (b *blobService) put(id string, m *nats.Msg) {
	req, name, sum, present, prev, err := b.writable(id, m, true)
	switch {
	case err != nil:
		b.fail(m, err)
		return
	case present:
		b.respond(m, blobReply{Present: true})
		return
	}
	key := req.Bucket + "/" + name
	b.mu.Lock()
	owned := 0
	for _, u := range b.uploads {
		if u.owner == id && u.failed == nil {
			owned++
		}
	}
	busy := b.writing[key] || owned >= maxUploadsPerParticipant
	u := &upload{id: nuid.Next(), owner: id, bucket: req.Bucket, size: req.Size, sum: sum, prev: prev, idle: b.idle, chunks: make(chan *nats.Msg, uploadWindow)}
	if !busy {
		b.writing[key] = true
		b.uploads[u.id] = u
	}
	b.mu.Unlock()
	if busy {
		b.fail(m, refuse(codeBusy, "%s is being written, or %s has %d uploads open; retry", req.Digest, id, maxUploadsPerParticipant))
		return
	}
	if u.size == 0 { // nothing to wait for: store it now
		b.wg.Add(1)
		b.write(u, key, name, m)
		return
	}
	b.wg.Add(1)
	go b.write(u, key, name, nil)
	b.respond(m, blobReply{Upload: u.id})
}

// data hands one chunk to its upload's writer, which acks it, or answers it with the
// failure that ended the upload's write. It holds b.mu while it does, so that a chunk of
// an upload whose write has just failed is answered once, by failUpload or here.
func (b *blobService) data(id string, m *nats.Msg) {
	uid := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.uploads[uid]
	switch {
	case u == nil || u.owner != id:
		b.fail(m, refuse(codeNotFound, "no upload %s of yours is open", uid))
		return
	case u.failed != nil:
		b.fail(m, u.failed)
		return
	}
	select {
	case u.chunks <- m:
	default:
		b.fail(m, refuse(codeInvalid, "more than %d chunks sent ahead of their acks", uploadWindow))
	}
}

// write stores one upload. Its chunks go under a fresh id and the metadata last, so a
// reader never sees the name until every byte has been hashed and matched; a mismatch
// or a stalled upload makes putObject purge what it wrote.
// The answer goes to the last chunk, or to last when the upload has no chunks.
func (b *blobService) write(u *upload, key, name string, last *nats.Msg) {
	defer b.wg.Done()
	r := &uploadReader{u: u, ctx: b.ctx, ack: func(m *nats.Msg) { b.respond(m, blobReply{}) }, last: last}
	info, err := putObject(b.ctx, b.js, u.bucket, name, u.sum, u.size, checked(r, u.sum, u.size), u.prev)
	b.mu.Lock()
	if err != nil && r.last == nil {
		b.failUpload(u, err)
	} else {
		delete(b.uploads, u.id)
	}
	b.mu.Unlock()
	b.written(key, info)
	if r.last != nil { // else nobody is waiting for an answer
		b.answerStored(r.last, err)
	}
}

// failUpload ends an upload whose write failed before its last chunk came, b.mu held.
// The sender waits for its chunks' acks: the chunks it sent ahead are answered with the
// failure now, and any it sends after, until the upload's idle time has passed, so that
// it learns at once why, and by the failure's code whether to try again (unavailable,
// as while the stream elects a leader), rather than at its wait for an ack's end.
func (b *blobService) failUpload(u *upload, err error) {
	u.failed = err
	for {
		select {
		case m := <-u.chunks:
			b.fail(m, err)
		default:
			time.AfterFunc(u.idle, func() {
				b.mu.Lock()
				delete(b.uploads, u.id)
				b.mu.Unlock()
			})
			return
		}
	}
}

// written ends the write of key, and remembers the metadata it wrote, if any: a read
// must not use metadata read before it.
func (b *blobService) written(key string, info *jetstream.ObjectInfo) {
	if info != nil {
		b.recent.note(key, info)
	}
	b.mu.Lock()
	delete(b.writing, key)
	b.mu.Unlock()
}

// answerStored answers the request that ended a write with how it ended.
func (b *blobService) answerStored(m *nats.Msg, err error) {
	switch {
	case errors.Is(err, ErrDigestMismatch):
		b.fail(m, codedError{codeMismatch, err})
	case err != nil:
		b.fail(m, err)
	default:
		b.respond(m, blobReply{Stored: true})
	}
}

// store writes a blob sent whole in its request, at most uploadChunk bytes: one round
// trip where put and its one chunk take two, for the small results most jobs have. The
// bytes are hashed before the name appears, as an upload's are, and one name still has
// one writer at a time. A blob of one chunk is written first and checked after
// (putSmall); a larger one is checked first.
func (b *blobService) store(id string, m *nats.Msg) {
	small := int64(len(m.Data)) <= objectChunk
	req, name, sum, present, prev, err := b.writable(id, m, !small)
	switch {
	case err == nil && (req.Size > uploadChunk || req.Size != int64(len(m.Data))):
		err = refuse(codeInvalid, "a store carries its whole blob, at most %d bytes: %d declared, %d sent", uploadChunk, req.Size, len(m.Data))
	case err == nil && present:
		b.respond(m, blobReply{Present: true})
		return
	}
	if err != nil {
		b.fail(m, err)
		return
	}
	key := req.Bucket + "/" + name
	b.mu.Lock()
	busy := b.writing[key]
	b.writing[key] = true
	b.mu.Unlock()
	if busy {
		b.fail(m, refuse(codeBusy, "%s is being written; retry", req.Digest))
		return
	}
	var info *jetstream.ObjectInfo
	if small { // the size is checked above: the bytes are hashed where they lie
		if err = checkSum(m.Data, sum); err == nil {
			present, err = b.recent.put(b.ctx, b.js, key, req.Bucket, name, sum, m.Data) // remembers what it wrote
		}
	} else {
		info, err = putObject(b.ctx, b.js, req.Bucket, name, sum, req.Size, checked(bytes.NewReader(m.Data), sum, req.Size), prev)
	}
	b.written(key, info)
	if err == nil && present {
		b.respond(m, blobReply{Present: true})
		return
	}
	b.answerStored(m, err)
}

type upload struct {
	id     string
	owner  string
	bucket string
	size   int64
	sum    [32]byte
	prev   *jetstream.ObjectInfo // what the name held before, if anything
	idle   time.Duration         // how long it waits for a chunk before it ends
	chunks chan *nats.Msg
	failed error // why its write ended before the last chunk (failUpload); b.mu guards it
}

// uploadReader yields an upload's chunks in order (a checkedReader over it hashes them).
// It acks each chunk as it takes it, except the last, which write answers once the
// object is stored.
type uploadReader struct {
	u    *upload
	ctx  context.Context
	ack  func(*nats.Msg)
	n    int64
	cur  []byte
	last *nats.Msg
}

func (r *uploadReader) Read(p []byte) (int, error) {
	if len(r.cur) == 0 {
		if r.n == r.u.size {
			return 0, io.EOF
		}
		idle := time.NewTimer(r.u.idle)
		defer idle.Stop()
		select {
		case m := <-r.u.chunks:
			if len(m.Data) == 0 || int64(len(m.Data)) > r.u.size-r.n {
				r.last = m
				return 0, fmt.Errorf("%w: an empty chunk, or more than the %d bytes declared", ErrDigestMismatch, r.u.size)
			}
			r.n += int64(len(m.Data))
			r.cur = m.Data
			if r.n == r.u.size {
				r.last = m
			} else {
				r.ack(m)
			}
		case <-idle.C:
			return 0, fmt.Errorf("%w: upload idle for %s", ErrBlob, r.u.idle)
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
