package transport

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DigestPrefix starts every blob digest.
const DigestPrefix = "sha256:"

const (
	// batchBytes caps one direct-get batch. Small enough that even a client
	// without the browser user agent never sees a frame nats.go would drop.
	batchBytes = 4 << 20
	// batchTimeout bounds the wait for one batch when ctx has no deadline.
	batchTimeout = 30 * time.Second
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

// PutBlob stores data in the object-store bucket under its hex sha256 and
// returns its digest. Content that is already stored intact is not sent again.
func PutBlob(ctx context.Context, js jetstream.JetStream, bucket string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:])
	obs, err := openBucket(ctx, js, bucket)
	if err != nil {
		return "", err
	}
	info, err := obs.GetInfo(ctx, name)
	switch {
	case err == nil && info.Size == uint64(len(data)) && info.Digest == objectDigest(sum):
		return DigestPrefix + name, nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return "", fmt.Errorf("%w: %s/%s: %v", ErrBlob, bucket, name, err)
	}
	if _, err := obs.PutBytes(ctx, name, data); err != nil {
		return "", fmt.Errorf("%w: put %s/%s: %v", ErrBlob, bucket, name, err)
	}
	return DigestPrefix + name, nil
}

// GetBlob fetches the blob with the given digest from bucket and checks that
// it hashes to that digest (ErrDigestMismatch otherwise). A missing blob or
// bucket is ErrNotFound.
//
// It reads chunks with batched direct gets rather than jetstream's
// ObjectStore.Get, which needs a consumer; nodes are not allowed to create
// consumers (see the package comment).
func GetBlob(ctx context.Context, js jetstream.JetStream, bucket, digest string) ([]byte, error) {
	sum, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	name := hex.EncodeToString(sum[:])
	obs, err := openBucket(ctx, js, bucket)
	if err != nil {
		return nil, err
	}
	info, err := obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s in bucket %s", ErrNotFound, digest, bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s/%s: %v", ErrBlob, bucket, name, err)
	}
	if info.Size > math.MaxInt || info.NUID == "" {
		return nil, fmt.Errorf("%w: %s/%s: implausible metadata (size %d)", ErrBlob, bucket, name, info.Size)
	}
	data, err := readChunks(ctx, js, bucket, info)
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

// readChunks streams an object's chunks in batches of up to batchBytes, each
// batch one request answered by a run of messages and an end-of-batch status.
func readChunks(ctx context.Context, js jetstream.JetStream, bucket string, info *jetstream.ObjectInfo) ([]byte, error) {
	nc := js.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%w: subscribe: %v", ErrBlob, err)
	}
	defer sub.Unsubscribe()

	api := apiPrefix(js) + "DIRECT.GET." + objectStream(bucket)
	req := directGetRequest{NextFor: "$O." + bucket + ".C." + info.NUID, MaxBytes: batchBytes}
	// The size comes from metadata a node may have written: trust it only
	// as far as a bounded preallocation.
	data := make([]byte, 0, min(info.Size, maxPrealloc))
	for chunks := 0; chunks < int(info.Chunks); {
		req.Batch = int(info.Chunks) - chunks
		body, _ := json.Marshal(req)
		if err := nc.PublishRequest(api, inbox, body); err != nil {
			return nil, fmt.Errorf("%w: request chunks: %v", ErrBlob, err)
		}
		n, next, err := readBatch(ctx, sub, &data, info.Size)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", bucket, info.Name, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %s/%s: %d of %d chunks stored", ErrNotFound, bucket, info.Name, chunks, info.Chunks)
		}
		chunks += n
		req.Seq = next
	}
	return data, nil
}

// readBatch appends one batch's chunks to data and returns how many arrived
// and the sequence to continue from.
func readBatch(ctx context.Context, sub *nats.Subscription, data *[]byte, size uint64) (n int, next uint64, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, batchTimeout)
		defer cancel()
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return n, next, fmt.Errorf("%w: waiting for chunks: %w", ErrBlob, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			return n, next, nil
		case "404":
			return n, next, nil
		default:
			return n, next, fmt.Errorf("%w: direct get: %s %s", ErrBlob, status, m.Header.Get("Description"))
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
