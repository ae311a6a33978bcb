package transport

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// busyRetry is how long Put waits before asking again when another upload of the same
// blob is under way.
const busyRetry = 50 * time.Millisecond

// Put asks again, after waits that double from unavailableRetry, while the store's stream
// is unavailable (ErrUnavailable), for up to unavailableFor in all: a stream whose leader
// was cut off takes seconds to elect another, and a job whose output could not be stored
// in that time had failed, on each node it was tried on in turn, and been refunded. An
// upload of many chunks that the store failed midway is made again from its start.
var unavailableRetry, unavailableFor = 250 * time.Millisecond, 30 * time.Second

// Blobs is a participant's (a node's or a validator's) access to the router's blob store.
// Every request goes to the server's blob service in the participant's own namespace,
// and the service grants it only what the participant's current jobs entitle it to.
type Blobs struct {
	Conn   *nats.Conn
	ID     string // the id the router admitted this connection under
	Bucket string
	// Server names the server whose blob service to ask (ServerOptions.Name): the one of
	// the router that granted the rights, which a router's dispatch names. Any server of
	// its cluster carries the request there.
	Server string
}

// Via returns the same access, asking server's blob service.
func (c Blobs) Via(server string) Blobs {
	c.Server = server
	return c
}

// subject is omni.node.<id>.blob.<server>.<verb>.
func (c Blobs) subject(verb string) string {
	return NodeSubjectPrefix + c.ID + ".blob." + c.Server + "." + verb
}

// call sends one request to the blob service and decodes its reply, mapping its error
// code to this package's sentinels.
func (c Blobs) call(ctx context.Context, subject string, req any) (blobReply, error) {
	body, _ := json.Marshal(req)
	return c.request(ctx, subject, body)
}

func (c Blobs) request(ctx context.Context, subject string, body []byte) (blobReply, error) {
	m, err := c.ask(ctx, &nats.Msg{Subject: subject, Data: body})
	if err != nil {
		return blobReply{}, err
	}
	return decodeBlobReply(m.Data)
}

// ask sends one request (m's subject, header and body) to the blob service and returns
// its answer, over the connection's long-lived reply inbox.
func (c Blobs) ask(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	if !validNodeID(c.Server) {
		return nil, fmt.Errorf("%w: no blob server named (%q)", ErrBlob, c.Server)
	}
	ctx, cancel := context.WithTimeout(ctx, batchTimeout) // a lost message fails one step, not the job's whole deadline
	defer cancel()
	r, err := c.Conn.RequestMsgWithContext(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBlob, m.Subject, err)
	}
	return r, nil
}

func decodeBlobReply(data []byte) (blobReply, error) {
	var r blobReply
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: malformed reply from the blob service: %v", ErrBlob, err)
	}
	if r.Code == "" && r.Error == "" {
		return r, nil
	}
	sentinel := ErrBlob
	switch r.Code {
	case codeNotFound:
		sentinel = ErrNotFound
	case codeForbidden:
		sentinel = ErrForbidden
	case codeInvalid:
		sentinel = ErrInvalidDigest
	case codeMismatch:
		sentinel = ErrDigestMismatch
	case codeBusy:
		sentinel = ErrBusy
	case codeUnavailable:
		sentinel = ErrUnavailable
	}
	return r, fmt.Errorf("%w: %s", sentinel, r.Error)
}

// Get fetches the blob with the given digest and checks that it hashes to it. A blob the
// participant holds no right to is ErrForbidden; one that does not exist, ErrNotFound.
// A blob of one chunk comes in the answer to one request; a larger one, in batches after it.
// The service may answer from metadata it remembers, which a name written over or
// deleted since has made stale: chunks missing or hashing wrong are asked for once more,
// with the metadata read afresh.
func (c Blobs) Get(ctx context.Context, digest string) ([]byte, error) {
	sum, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	data, described, err := c.get(ctx, digest, sum, false)
	if described && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrDigestMismatch)) {
		data, _, err = c.get(ctx, digest, sum, true)
	}
	return data, err
}

// get is one try of Get, fresh asking the service to read the metadata afresh;
// described says the service found metadata for the blob, so what went wrong after
// came of the chunks it names.
func (c Blobs) get(ctx context.Context, digest string, sum [32]byte, fresh bool) (data []byte, described bool, err error) {
	body, _ := json.Marshal(blobRequest{Bucket: c.Bucket, Digest: digest, Fresh: fresh})
	m, err := c.ask(ctx, &nats.Msg{Subject: c.subject(blobVerbGet), Data: body})
	if err != nil {
		return nil, false, err
	}
	if isChunk(m) {
		if data, err = chunkOf(m); err != nil {
			return nil, true, fmt.Errorf("%s: %w", digest, err)
		}
	} else {
		st, err := decodeBlobReply(m.Data)
		if err != nil {
			return nil, false, err
		}
		data, err = readChunks(ctx, c.Conn, digest, st.Size, st.Chunks, func(seq uint64, batch int) (string, []byte) {
			body, _ := json.Marshal(blobRequest{Bucket: c.Bucket, Digest: digest, Seq: seq, Batch: batch})
			return c.subject(blobVerbRead), body
		})
		if err != nil {
			return nil, true, err
		}
	}
	if sha256.Sum256(data) != sum {
		return nil, true, fmt.Errorf("%w: %s: %d bytes arrived that hash to %s", ErrDigestMismatch, digest, len(data), Digest(data))
	}
	return data, true, nil
}

// Put stores data as this participant's work for job and returns its digest. The
// service hashes every byte before it files them under the digest; content already
// stored intact is not sent again. Data of up to one upload chunk goes in one request.
// An upload the store could not take whole (ErrUnavailable, at its start or midway) is
// made again from its start.
func (c Blobs) Put(ctx context.Context, job string, data []byte) (string, error) {
	digest := Digest(data)
	req := blobRequest{Bucket: c.Bucket, Job: job, Digest: digest, Size: int64(len(data))}
	wait, giveUp := unavailableRetry, time.Now().Add(unavailableFor)
	for {
		err := c.put(ctx, req, data)
		retry := time.Duration(0)
		switch {
		case errors.Is(err, ErrBusy):
			retry = busyRetry
		case errors.Is(err, ErrUnavailable) && time.Now().Add(wait).Before(giveUp):
			retry, wait = wait, 2*wait
		case err != nil:
			return "", err
		default:
			return digest, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(retry):
		}
	}
}

// put is one try of Put: one store, or an upload and its chunks.
func (c Blobs) put(ctx context.Context, req blobRequest, data []byte) error {
	whole := len(data) <= uploadChunk
	var r blobReply
	var err error
	if whole {
		r, err = c.store(ctx, req, data)
	} else {
		r, err = c.call(ctx, c.subject(blobVerbPut), req)
	}
	switch {
	case err != nil:
		return err
	case r.Present || r.Stored:
		return nil
	case whole:
		return fmt.Errorf("%w: the blob service did not confirm the store", ErrBlob)
	}
	return c.send(ctx, r.Upload, data)
}

// store sends req and the whole of data in one request.
func (c Blobs) store(ctx context.Context, req blobRequest, data []byte) (blobReply, error) {
	head, _ := json.Marshal(req)
	m := nats.NewMsg(c.subject(blobVerbStore))
	m.Header.Set(blobRequestHeader, string(head))
	m.Data = data
	r, err := c.ask(ctx, m)
	if err != nil {
		return blobReply{}, err
	}
	return decodeBlobReply(r.Data)
}

// send streams data to an open upload, at most uploadWindow chunks ahead of the acks,
// and waits for the service to confirm that it stored them.
func (c Blobs) send(ctx context.Context, upload string, data []byte) error {
	inbox := c.Conn.NewInbox()
	sub, err := c.Conn.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("%w: subscribe: %v", ErrBlob, err)
	}
	defer sub.Unsubscribe()
	subject := c.subject(blobVerbData) + "." + upload
	chunks := (len(data) + uploadChunk - 1) / uploadChunk
	sent, acked := 0, 0
	for acked < chunks {
		for sent < chunks && sent-acked < uploadWindow {
			chunk := data[sent*uploadChunk : min((sent+1)*uploadChunk, len(data))]
			if err := c.Conn.PublishRequest(subject, inbox, chunk); err != nil {
				return fmt.Errorf("%w: send chunk: %v", ErrBlob, err)
			}
			sent++
		}
		// Each ack within batchTimeout, whatever ctx allows: a lost one fails the upload
		// now, not at the job's deadline.
		actx, cancel := context.WithTimeout(ctx, batchTimeout)
		m, err := sub.NextMsgWithContext(actx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: waiting for the blob service: %w", ErrBlob, err)
		}
		r, err := decodeBlobReply(m.Data)
		if err != nil {
			return err
		}
		acked++
		if acked == chunks && !r.Stored {
			return fmt.Errorf("%w: the blob service did not confirm the upload", ErrBlob)
		}
	}
	return nil
}
