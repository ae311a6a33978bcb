package transport

// Attacks on the data plane (issue #8, findings 1, 2, 3 and 6), each by a participant
// built from this package and nats.go rather than the honest daemons: it is registered
// and connected like any node, and tries what its rights must not allow.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// expectDenied waits for the permission violation that NATS reports asynchronously.
func expectDenied(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("%s: OnError got %v, want ErrPermissionDenied", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no permission violation reported", what)
	}
}

// Finding 1: a node wrote object metadata for a name it never uploaded, the honest
// node's put trusted it and skipped its upload, and the honest node was slashed for the
// junk the validator read.
func TestNodeCannotPoisonABlobName(t *testing.T) {
	n := startTestNet(t, "mallory", "honest")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	errs := make(chan error, 16)
	mconn := n.dialNode(t, "mallory", func(err error) { errs <- err })
	honest := n.blobs(n.dialNode(t, "honest", func(err error) { t.Errorf("honest node: %v", err) }), "honest")
	output := randomBytes(300<<10, 11) // what the honest node will compute
	digest := Digest(output)
	name := strings.TrimPrefix(digest, DigestPrefix)
	n.access.AllowWrite("honest", "job-h", 1<<20)
	n.access.AllowWrite("mallory", "job-m", 1<<20)

	t.Run("metadata for a name it never uploaded", func(t *testing.T) {
		// What an object store's Put writes last, with the size and digest the honest
		// output will have.
		meta, _ := json.Marshal(jetstream.ObjectInfo{
			ObjectMeta: jetstream.ObjectMeta{Name: name}, Bucket: testBucket, NUID: "forged",
			Size: uint64(len(output)), Chunks: 1, Digest: objectDigest([32]byte(mustParse(t, digest))),
		})
		if err := mconn.Publish("$O."+testBucket+".M."+name, meta); err != nil {
			t.Fatal(err)
		}
		expectDenied(t, errs, "publish metadata")
		if err := mconn.Publish("$O."+testBucket+".C.forged", []byte("junk")); err != nil {
			t.Fatal(err)
		}
		expectDenied(t, errs, "publish a chunk")
	})

	t.Run("an upload whose bytes do not match its name", func(t *testing.T) {
		forger := n.blobs(mconn, "mallory")
		r, err := forger.call(ctx, forger.subject(blobVerbPut), blobRequest{Bucket: testBucket, Job: "job-m", Digest: digest, Size: int64(len(output))})
		if err != nil {
			t.Fatal(err)
		}
		junk := bytes.Repeat([]byte{0xee}, len(output))
		if err := forger.send(ctx, r.Upload, junk); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("forged upload: %v, want ErrDigestMismatch", err)
		}
		if _, err := GetBlob(ctx, adminJS, testBucket, digest); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after the forged upload the name reads %v, want ErrNotFound", err)
		}
	})

	t.Run("a store whose bytes do not match its name or size", func(t *testing.T) {
		forger := n.blobs(mconn, "mallory")
		small := output[:1000]
		smallDigest := Digest(small)
		junk := bytes.Repeat([]byte{0xee}, len(small))
		for _, c := range []struct {
			name string
			req  blobRequest
			body []byte
			want error
		}{
			{"other bytes", blobRequest{Bucket: testBucket, Job: "job-m", Digest: smallDigest, Size: int64(len(small))}, junk, ErrDigestMismatch},
			{"fewer bytes than declared", blobRequest{Bucket: testBucket, Job: "job-m", Digest: smallDigest, Size: int64(len(small))}, small[:999], ErrInvalidDigest},
			{"more than a store carries", blobRequest{Bucket: testBucket, Job: "job-m", Digest: smallDigest, Size: uploadChunk + 1}, make([]byte, uploadChunk+1), ErrInvalidDigest},
			{"another node's job", blobRequest{Bucket: testBucket, Job: "job-h", Digest: smallDigest, Size: int64(len(small))}, small, ErrForbidden},
		} {
			if _, err := forger.store(ctx, c.req, c.body); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if _, err := GetBlob(ctx, adminJS, testBucket, smallDigest); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after the forged stores the name reads %v, want ErrNotFound", err)
		}
		if _, err := honest.Put(ctx, "job-h", small); err != nil {
			t.Fatal(err)
		}
		if got, err := GetBlob(ctx, adminJS, testBucket, smallDigest); err != nil || !bytes.Equal(got, small) {
			t.Fatalf("router reads %v after the honest store", err)
		}
		// The service now remembers the name as stored (recent): other bytes under it are
		// still hashed and refused, not answered "present".
		if _, err := forger.store(ctx, blobRequest{Bucket: testBucket, Job: "job-m", Digest: smallDigest, Size: int64(len(small))}, junk); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("other bytes under a name stored lately: %v, want ErrDigestMismatch", err)
		}
		if got, err := GetBlob(ctx, adminJS, testBucket, smallDigest); err != nil || !bytes.Equal(got, small) {
			t.Fatalf("after the forged store over a name stored lately the router reads %v", err)
		}
	})

	t.Run("the honest node's output is stored intact", func(t *testing.T) {
		if _, err := honest.Put(ctx, "job-h", output); err != nil {
			t.Fatal(err)
		}
		got, err := GetBlob(ctx, adminJS, testBucket, digest)
		if err != nil || !bytes.Equal(got, output) {
			t.Fatalf("router reads %v after the honest upload", err)
		}
	})

	t.Run("writes outside its grant", func(t *testing.T) {
		forger := n.blobs(mconn, "mallory")
		if _, err := forger.Put(ctx, "job-h", []byte("not my job")); !errors.Is(err, ErrForbidden) {
			t.Fatalf("put for another node's job: %v, want ErrForbidden", err)
		}
		if _, err := forger.Put(ctx, "job-m", make([]byte, 2<<20)); !errors.Is(err, ErrForbidden) {
			t.Fatalf("put over its quota: %v, want ErrForbidden", err)
		}
		// Chunks sent to an upload that another participant opened.
		r, err := honest.call(ctx, honest.subject(blobVerbPut), blobRequest{Bucket: testBucket, Job: "job-h", Digest: Digest([]byte("x")), Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		reply, err := mconn.RequestWithContext(ctx, forger.subject(blobVerbData)+"."+r.Upload, []byte("y"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeBlobReply(reply.Data); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a chunk into another's upload: %v, want ErrNotFound", err)
		}
		if err := honest.send(ctx, r.Upload, []byte("x")); err != nil {
			t.Fatalf("the owner's upload was disturbed: %v", err)
		}
	})
}

func mustParse(t *testing.T, digest string) [32]byte {
	t.Helper()
	sum, err := ParseDigest(digest)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// Finding 2: an unassigned node read other consumers' inputs and outputs by digest and
// enumerated the whole bucket by stream sequence.
func TestNodeReadsOnlyWhatItWasGranted(t *testing.T) {
	n := startTestNet(t, "mallory")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	secret := randomBytes(200<<10, 21)
	mine := randomBytes(200<<10, 22)
	secretDigest, err := PutBlob(ctx, adminJS, testBucket, secret)
	if err != nil {
		t.Fatal(err)
	}
	mineDigest, err := PutBlob(ctx, adminJS, testBucket, mine)
	if err != nil {
		t.Fatal(err)
	}
	n.access.AllowRead("mallory", mineDigest)
	errs := make(chan error, 16)
	conn := n.dialNode(t, "mallory", func(err error) { errs <- err })
	blobs := n.blobs(conn, "mallory")

	if _, err := blobs.Get(ctx, secretDigest); !errors.Is(err, ErrForbidden) {
		t.Fatalf("read of another job's blob: %v, want ErrForbidden", err)
	}

	// Enumeration by sequence, straight at JetStream.
	inbox := conn.NewInbox()
	sub, err := conn.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	for _, api := range []string{"$JS.API.DIRECT.GET.OBJ_" + testBucket, "$JS.API.STREAM.MSG.GET.OBJ_" + testBucket, "$JS.API.STREAM.INFO.OBJ_" + testBucket, "$JS.API.STREAM.LIST"} {
		if err := conn.PublishRequest(api, inbox, []byte(`{"seq":1}`)); err != nil {
			t.Fatal(err)
		}
		expectDenied(t, errs, api)
	}

	// Enumeration through the service: ask for a granted blob's chunks from sequence 1
	// with a batch as large as the stream. Only that blob's own chunks may come back.
	body, _ := json.Marshal(blobRequest{Bucket: testBucket, Digest: mineDigest, Seq: 1, Batch: 1000})
	if err := conn.PublishRequest(blobs.subject(blobVerbRead), inbox, body); err != nil {
		t.Fatal(err)
	}
	var got []byte
	n1, _, err := readBatch(ctx, sub, &got, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if n1 == 0 || !bytes.Equal(got, mine) {
		t.Fatalf("a read from sequence 1 returned %d chunks, %d bytes: not exactly the granted blob", n1, len(got))
	}
	if bytes.Contains(got, secret[:64]) {
		t.Fatal("a read of a granted blob leaked another blob's bytes")
	}
}

// Finding 3: a node subscribed to _INBOX.> and heard other participants' replies (blob
// chunks, verdicts).
func TestRepliesStayInTheirInbox(t *testing.T) {
	n := startTestNet(t, "mallory", "victim")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	adminJS := n.adminJS(t)
	errs := make(chan error, 16)
	mconn := n.dialNode(t, "mallory", func(err error) { errs <- err })
	vconn := n.dialNode(t, "victim", func(err error) { t.Errorf("victim: %v", err) })
	victimInbox, err := InboxPrefix(n.nodes["victim"].Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}

	overheard := make(chan *nats.Msg, 64)
	for _, subject := range []string{"_INBOX.>", victimInbox + ".>", ">"} {
		if _, err := mconn.ChanSubscribe(subject, overheard); err != nil {
			t.Fatal(err)
		}
		expectDenied(t, errs, "subscribe "+subject)
	}

	// The victim reads a blob; its chunks travel to its own inbox only.
	data := randomBytes(256<<10, 31)
	digest, err := PutBlob(ctx, adminJS, testBucket, data)
	if err != nil {
		t.Fatal(err)
	}
	n.access.AllowRead("victim", digest)
	if got, err := n.blobs(vconn, "victim").Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("victim's read: %v", err)
	}

	// Mallory asks the service to answer into the victim's inbox, or into the victim's
	// own namespace where the router would take it for the victim's word.
	n.access.AllowRead("mallory", digest)
	victimHears := make(chan *nats.Msg, 64)
	if _, err := vconn.ChanSubscribe(victimInbox+".>", victimHears); err != nil {
		t.Fatal(err)
	}
	if _, err := vconn.ChanSubscribe(NodeSubjectPrefix+"victim.>", victimHears); err != nil {
		t.Fatal(err)
	}
	if err := vconn.Flush(); err != nil {
		t.Fatal(err)
	}
	mallory := n.blobs(mconn, "mallory")
	for _, reply := range []string{victimInbox + ".x", NodeSubjectPrefix + "victim.result"} {
		for _, verb := range []string{blobVerbStat, blobVerbRead, blobVerbGet} {
			body, _ := json.Marshal(blobRequest{Bucket: testBucket, Digest: digest, Batch: 10})
			if err := mconn.PublishRequest(mallory.subject(verb), reply, body); err != nil {
				t.Fatal(err)
			}
		}
		// A store, whose answer would tell the victim its output is stored.
		head, _ := json.Marshal(blobRequest{Bucket: testBucket, Job: "job-m", Digest: Digest([]byte("x")), Size: 1})
		m := &nats.Msg{Subject: mallory.subject(blobVerbStore), Reply: reply, Header: nats.Header{blobRequestHeader: {string(head)}}, Data: []byte("x")}
		if err := mconn.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := mconn.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-victimHears:
		t.Fatalf("the service answered mallory's request on %s", m.Subject)
	case m := <-overheard:
		t.Fatalf("mallory overheard %s", m.Subject)
	case <-time.After(300 * time.Millisecond):
	}
}

// Finding 6: a node slashed and deactivated kept reading over its open connection.
func TestReauthorizeDisconnectsWithdrawnParticipants(t *testing.T) {
	n := startTestNet(t, "slashed", "honest")
	conn := n.dialNode(t, "slashed", func(error) {})
	honest := n.dialNode(t, "honest", func(err error) { t.Errorf("honest node: %v", err) })
	closed := make(chan struct{}, 1)
	conn.SetDisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case closed <- struct{}{}:
		default:
		}
	})

	n.authz.revoke("slashed")
	var asked []string
	dropped := n.srv.Reauthorize(func(id string, pub ed25519.PublicKey) bool {
		asked = append(asked, id)
		_, ok := n.authz.authorize(pub)
		return ok
	})
	if len(dropped) != 1 || dropped[0] != "slashed" {
		t.Fatalf("dropped %v, want [slashed] (asked about %v)", dropped, asked)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the withdrawn participant is still connected")
	}
	// Its reconnects are refused while the honest node is untouched.
	time.Sleep(300 * time.Millisecond)
	if conn.IsConnected() {
		t.Fatal("the withdrawn participant reconnected")
	}
	if !honest.IsConnected() {
		t.Fatal("the honest participant was disconnected")
	}
	if err := honest.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestGrantsCountAndRevoke(t *testing.T) {
	g := NewGrants()
	d := Digest([]byte("input"))
	if g.MayRead("n", d) == nil || g.MayWrite("n", "job", d, 1) == nil {
		t.Fatal("an empty table allowed something")
	}
	first := g.AllowRead("n", d)
	second := g.AllowRead("n", d) // another job with the same input
	first()
	first() // revoking twice is revoking once
	if err := g.MayRead("n", d); err != nil {
		t.Fatalf("the second job's grant went with the first: %v", err)
	}
	if g.MayRead("m", d) == nil {
		t.Fatal("a grant to n let m read")
	}
	second()
	if g.MayRead("n", d) == nil {
		t.Fatal("read allowed after every grant was revoked")
	}

	small := g.AllowWrite("n", "job", 10)
	large := g.AllowWrite("n", "job", 100)
	if err := g.MayWrite("n", "job", d, 100); err != nil {
		t.Fatal(err)
	}
	if g.MayWrite("n", "job", d, 101) == nil || g.MayWrite("n", "other", d, 1) == nil || g.MayWrite("m", "job", d, 1) == nil {
		t.Fatal("a write beyond its grant was allowed")
	}
	large()
	if g.MayWrite("n", "job", d, 11) == nil || g.MayWrite("n", "job", d, 10) != nil {
		t.Fatal("revoking the large grant should leave exactly the small one")
	}
	small()
	if g.MayWrite("n", "job", d, 1) == nil {
		t.Fatal("write allowed after every grant was revoked")
	}
}
