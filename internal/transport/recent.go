package transport

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// recentFor is how long the metadata of a name written, found intact or read is used
// without asking the server again, and maxRecent how many names are remembered.
const (
	recentFor = time.Minute
	maxRecent = 1 << 14
)

// recent remembers the metadata of the names this process lately wrote or read, keyed
// by bucket/name, so that a put of content stored lately asks nothing at all, and a read
// asks only for the chunks. Jobs often share inputs (the same weights, the same data),
// and putSmall, which writes before it asks, would otherwise pay four round trips where
// one check did. And every blob is read by a node or validators moments after it is
// written, where asking for its metadata had the server load the stream's last message
// on the name, often from disk: 2% of a busy devnet's CPU.
//
// A blob's name is its digest and an intact blob is never written again (only a damaged
// one is written over, by the router or its blob service, the only writers), so what is
// remembered goes stale only by a fault of the store, a deletion, or a write through
// another server of a cluster. A deletion or a write purges the chunks the old metadata
// names, and a fault leaves them missing or holding other bytes, so a read that finds
// them so forgets the name and asks again, once (Bucket.Get; Blobs.Get asks the blob
// service afresh); only a deletion whose purge failed is still read, by those granted
// the blob, until recentFor passes. A put trusts what is remembered for at most
// recentFor, and the next put after it checks and repairs as before.
type recent struct {
	now func() time.Time
	mu  sync.Mutex
	at  map[string]seen
}

// seen is a name's metadata and when it was written or read.
type seen struct {
	info *jetstream.ObjectInfo
	at   time.Time
}

func newRecent(now func() time.Time) *recent {
	return &recent{now: now, at: map[string]seen{}}
}

// info is key's metadata as noted within recentFor, nil if none was. The caller must not
// change it.
func (r *recent) info(key string) *jetstream.ObjectInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.at[key]; ok && r.now().Sub(s.at) < recentFor {
		return s.info
	}
	return nil
}

// holds reports whether key was noted within recentFor holding size bytes that hash to
// sum: what a put would find intact.
func (r *recent) holds(key string, sum [32]byte, size int64) bool {
	info := r.info(key)
	return info != nil && info.Size == uint64(size) && info.Digest == objectDigest(sum)
}

// note remembers info as key's metadata now. When maxRecent names are held, the expired
// ones go, and if none has expired, all of them.
func (r *recent) note(key string, info *jetstream.ObjectInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.at) >= maxRecent {
		for k, s := range r.at {
			if now.Sub(s.at) >= recentFor {
				delete(r.at, k)
			}
		}
		if len(r.at) >= maxRecent {
			clear(r.at)
		}
	}
	r.at[key] = seen{info, now}
}

// forget drops key's metadata if it is still info: found stale, it must not serve
// another read, nor a put, while metadata noted since (a write that repaired the name)
// stays.
func (r *recent) forget(key string, info *jetstream.ObjectInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.at[key]; ok && s.info == info {
		delete(r.at, key)
	}
}

// put is putSmall under the memory: content that key was noted holding within recentFor
// is present with nothing asked, and the metadata key holds once putSmall returns is
// noted.
func (r *recent) put(ctx context.Context, js jetstream.JetStream, key, bucket, name string, sum [32]byte, data []byte) (present bool, err error) {
	if r.holds(key, sum, int64(len(data))) {
		return true, nil
	}
	info, present, err := putSmall(ctx, js, bucket, name, sum, data)
	if err == nil {
		r.note(key, info)
	}
	return present, err
}
