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

// The blob service reads metadata and chunks by direct get, which any replica of a
// bucket's stream may answer, and a replica may not yet hold what the leader has
// acknowledged: a blob stored a moment ago through one server could read as missing
// through another, and a node's input fetch fail. So on a replicated bucket a miss is
// asked again of the leader, through the JetStream API's message get, which only the
// leader answers, before the requester hears "not found". A blob found, the common
// case, costs nothing more; a blob that is absent costs one more round trip.
//
// The leader is asked by the service, never by a participant, and only for a request
// that passed its grant check (readable): it yields nothing the service would not have
// read for that request anyway.

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
// if it holds no such message.
func (b *blobService) leaderGet(bucket string, req msgGetRequest) (*storedMsg, error) {
	ctx, cancel := context.WithTimeout(b.ctx, leaderTimeout)
	defer cancel()
	req.NoHeaders = true // neither metadata nor chunks carry any the service needs
	body, _ := json.Marshal(req)
	r, err := b.nc.RequestWithContext(ctx, apiPrefix(b.js)+"STREAM.MSG.GET."+objectStream(bucket), body)
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
func (b *blobService) leaderInfo(bucket, name string) (*jetstream.ObjectInfo, error) {
	m, err := b.leaderGet(bucket, msgGetRequest{LastFor: metaSubject(bucket, name)})
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

// chunkFromLeader answers a read that a replica answered with nothing: with the
// leader's chunk at get.Seq or after, in the form a direct get has, and for a batch its
// end (the reader asks again from the next sequence, mostly of a replica that has
// caught up by then); or with 404 if the leader has none either.
func (b *blobService) chunkFromLeader(m *nats.Msg, bucket string, get directGetRequest) {
	c, err := b.leaderGet(bucket, msgGetRequest{Seq: get.Seq, NextFor: get.NextFor})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		err = refuse(codeNotFound, "%w: no chunk on %s from %d", ErrNotFound, get.NextFor, get.Seq)
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
