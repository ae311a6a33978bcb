package transport

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRecentForgetsAfterRecentForAndWhenFull(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecent(func() time.Time { return now })
	r.note("a")
	if !r.has("a") || r.has("b") {
		t.Fatal("a noted, b not: has disagrees")
	}
	now = now.Add(recentFor - time.Nanosecond)
	if !r.has("a") {
		t.Fatal("a forgotten before recentFor")
	}
	now = now.Add(time.Nanosecond)
	if r.has("a") {
		t.Fatal("a remembered past recentFor")
	}
	r.note("a")
	for i := range maxRecent - 1 {
		r.note(fmt.Sprint(i))
	}
	r.note("one too many") // nothing has expired: all go
	if len(r.at) != 1 || !r.has("one too many") || r.has("a") {
		t.Fatalf("full: %d names held after one more, want only the new one", len(r.at))
	}
	now = now.Add(recentFor)
	for i := range maxRecent - 1 {
		r.note(fmt.Sprint(i))
	}
	r.note("last") // "one too many" has expired and goes; the rest stay
	if len(r.at) != maxRecent || r.has("one too many") || !r.has("0") {
		t.Fatalf("full with one expired: %d held", len(r.at))
	}
}

// A bucket leaves content it put within recentFor alone without asking the server, and
// after recentFor checks, and repairs, as before.
func TestBucketPutsAgainOnlyAfterRecentFor(t *testing.T) {
	n := startTestNet(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	js := n.adminJS(t)
	now := time.Unix(1000, 0)
	b := NewBucket(js, testBucket)
	b.recent = newRecent(func() time.Time { return now })
	data := randomBytes(2000, 70)
	digest, err := b.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(digest, DigestPrefix)
	if _, err := obs.PutBytes(ctx, name, []byte("damaged")); err != nil { // a fault of the store
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, _ := obs.GetBytes(ctx, name); !bytes.Equal(got, []byte("damaged")) {
		t.Fatal("a put within recentFor asked the server after all")
	}
	now = now.Add(recentFor)
	if _, err := b.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, err := obs.GetBytes(ctx, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after recentFor the damage stays: %q, %v", got, err)
	}
}
