package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The blob service and Bucket read metadata and chunks by direct get, which any replica
// of a bucket's stream may answer, and a replica may not yet hold what the leader has
// acknowledged: a blob stored a moment ago through one server could read as missing
// through another, and a node's input fetch, or a router's read of a result, fail. So on
// a replicated bucket a miss is asked again of the leader, through the JetStream API's
// message get, which only the leader answers, before the reader hears "not found". A
// blob found, the common case, costs nothing more; a blob that is absent costs one more
// round trip. A write refused because the name exists (putSmall) reads what the name
// holds from the leader at once, and a larger blob's write, which looks before it writes
// (storedIntact), asks the leader after a miss: a replica's "absent" there would have the
// name written again with nothing recorded of the first copy, whose chunks no metadata
// would name.
//
// The leader is asked by the router or the blob service, never by a participant, and by
// the service only for a request that passed its grant check (readable, writable): it
// yields nothing the service would not have read for that request anyway.

// leaderTimeout bounds the wait for the leader's answer, which comes at once while
// the stream has a leader.
const leaderTimeout = 5 * time.Second

// msgGetRequest is the server's JSApiMsgGetRequest, in the forms the service sends.
type msgGetRequest struct {
	Seq       uint64 `json:"seq,omitempty"`
	LastFor   string `json:"last_by_subj,omitempty"`
	NextFor   string `json:"next_by_subj,omitempty"`
	NoHeaders bool   `json:"no_hdr,omitempty"`
}

// storedMsg is a message as the leader answers it (the server's StoredMsg, without
// headers).
type storedMsg struct {
	Subject  string    `json:"subject"`
	Sequence uint64    `json:"seq"`
	Data     []byte    `json:"data,omitempty"`
	Time     time.Time `json:"time"`
}

// leaderGet has the leader of the bucket's stream answer req: jetstream.ErrMsgNotFound
// if it holds no such message. It needs only a connection with the rights to the bucket
// (the router's, or the blob service's own), so Bucket and the service share it.
func leaderGet(ctx context.Context, js jetstream.JetStream, bucket string, req msgGetRequest) (*storedMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderTimeout)
	defer cancel()
	req.NoHeaders = true // neither metadata nor chunks carry any a reader needs
	body, _ := json.Marshal(req)
	r, err := js.Conn().RequestWithContext(ctx, apiPrefix(js)+"STREAM.MSG.GET."+objectStream(bucket), body)
	if err != nil {
		return nil, fmt.Errorf("%w: ask the leader of bucket %s: %w", ErrBlob, bucket, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *storedMsg          `json:"message"`
	}
	switch err := json.Unmarshal(r.Data, &resp); {
	case err != nil:
		return nil, fmt.Errorf("%w: the leader of bucket %s answered: %v", ErrBlob, bucket, err)
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, fmt.Errorf("%w: the leader of bucket %s: %w", ErrBlob, bucket, resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("%w: the leader of bucket %s answered no message", ErrBlob, bucket)
	}
	return resp.Message, nil
}

// leaderInfo is the object's metadata as the leader holds it, read as GetInfo reads it:
// jetstream.ErrObjectNotFound if there is none, or it marks the object deleted.
func leaderInfo(ctx context.Context, js jetstream.JetStream, bucket, name string) (*jetstream.ObjectInfo, error) {
	m, err := leaderGet(ctx, js, bucket, msgGetRequest{LastFor: metaSubject(bucket, name)})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, jetstream.ErrObjectNotFound
	} else if err != nil {
		return nil, err
	}
	var info jetstream.ObjectInfo
	if err := json.Unmarshal(m.Data, &info); err != nil {
		return nil, fmt.Errorf("%w: %s/%s: malformed metadata: %v", ErrBlob, bucket, name, err)
	}
	if info.Deleted {
		return nil, jetstream.ErrObjectNotFound
	}
	info.ModTime = m.Time
	return &info, nil
}

// objectInfo reads the object's metadata by direct get and, on a replicated bucket, asks
// the leader when that finds none: jetstream.ErrObjectNotFound if neither has it.
func objectInfo(ctx context.Context, js jetstream.JetStream, obs jetstream.ObjectStore, bucket, name string, replicated bool) (*jetstream.ObjectInfo, error) {
	info, err := obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) && replicated {
		info, err = leaderInfo(ctx, js, bucket, name)
	}
	return info, err
}

// leaderChunk is the leader's first chunk on subject at seq or after: ErrNotFound if it
// has none.
func leaderChunk(ctx context.Context, js jetstream.JetStream, bucket, subject string, seq uint64) (*storedMsg, error) {
	c, err := leaderGet(ctx, js, bucket, msgGetRequest{Seq: seq, NextFor: subject})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: no chunk on %s from %d", ErrNotFound, subject, seq)
	}
	return c, err
}

// leaderChunks reads all the object's chunks from the leader, one request each, for a
// Bucket.Get whose direct gets came up short. Unlike the service's reader, which asks
// again for what follows (mostly of a replica caught up by then), Get has no reply of
// its own to hand the leader's one chunk to; this path is only for the moments after a
// store, and a blob the router reads is mostly of one chunk.
func leaderChunks(ctx context.Context, js jetstream.JetStream, bucket, name string, info *jetstream.ObjectInfo) ([]byte, error) {
	// The size came over the network: trust it only as far as a bounded preallocation.
	data := make([]byte, 0, min(info.Size, maxPrealloc))
	var seq uint64
	for range info.Chunks {
		c, err := leaderChunk(ctx, js, bucket, chunkSubject(bucket, info.NUID), seq)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", bucket, name, err)
		}
		if uint64(len(data)+len(c.Data)) > info.Size {
			return nil, fmt.Errorf("%w: %s/%s: chunks exceed the recorded size %d", ErrDigestMismatch, bucket, name, info.Size)
		}
		data = append(data, c.Data...)
		seq = c.Sequence + 1
	}
	return data, nil
}

// chunkFromLeader answers a read that a replica answered with nothing: with the
// leader's chunk at get.Seq or after, in the form a direct get has, and for a batch its
// end (the reader asks again from the next sequence, mostly of a replica that has
// caught up by then); or with 404 if the leader has none either.
func (b *blobService) chunkFromLeader(m *nats.Msg, bucket string, get directGetRequest) {
	c, err := leaderChunk(b.ctx, b.js, bucket, get.NextFor, get.Seq)
	if errors.Is(err, ErrNotFound) {
		err = codedError{codeNotFound, err}
	}
	if err != nil {
		b.status(m, err)
		return
	}
	chunk := nats.NewMsg(m.Reply)
	chunk.Header.Set(jetstream.StreamHeader, objectStream(bucket))
	chunk.Header.Set(jetstream.SubjectHeader, c.Subject)
	chunk.Header.Set(jetstream.SequenceHeader, strconv.FormatUint(c.Sequence, 10))
	chunk.Header.Set(jetstream.TimeStampHeaer, c.Time.Format(time.RFC3339Nano))
	chunk.Data = c.Data
	if err := b.nc.PublishMsg(chunk); err != nil || get.Batch == 0 {
		return
	}
	end := nats.NewMsg(m.Reply)
	end.Header.Set("Status", "204")
	end.Header.Set("Description", "EOB")
	if err := b.nc.PublishMsg(end); err != nil {
		b.log.Debug("blob end of batch", "err", err)
	}
}
