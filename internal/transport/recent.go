package transport

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// recentFor is how long a name written or found intact is taken to still hold its
// content without asking, and maxRecent how many such names are remembered.
const (
	recentFor = time.Minute
	maxRecent = 1 << 14
)

// recent remembers the names this process lately wrote, or found holding their content
// intact, so that a put of the same content asks nothing at all. A blob's name is its
// digest and an intact blob is never written again or deleted (only a damaged one is
// written over), so the memory can only be stale by a fault of the store, and then for
// at most recentFor: the next put after it checks and repairs as before. Jobs often
// share inputs (the same weights, the same data), and putSmall, which writes before it
// asks, would otherwise pay four round trips where one check did.
type recent struct {
	now func() time.Time
	mu  sync.Mutex
	at  map[string]time.Time
}

func newRecent(now func() time.Time) *recent {
	return &recent{now: now, at: map[string]time.Time{}}
}

// has reports whether name was noted within recentFor.
func (r *recent) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[name]
	return ok && r.now().Sub(at) < recentFor
}

// note remembers name as holding its content now. When maxRecent names are held, the
// expired ones go, and if none has expired, all of them.
func (r *recent) note(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if len(r.at) >= maxRecent {
		for k, at := range r.at {
			if now.Sub(at) >= recentFor {
				delete(r.at, k)
			}
		}
		if len(r.at) >= maxRecent {
			clear(r.at)
		}
	}
	r.at[name] = now
}

// put is putSmall under the memory: content whose key was noted within recentFor is
// present with nothing asked, and a name that holds data once putSmall returns is noted.
func (r *recent) put(ctx context.Context, js jetstream.JetStream, key, bucket, name string, sum [32]byte, data []byte) (present bool, err error) {
	if r.has(key) {
		return true, nil
	}
	if present, err = putSmall(ctx, js, bucket, name, sum, data); err == nil {
		r.note(key)
	}
	return present, err
}
