package node

import (
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
)

func TestHeartbeatIntervalFollowsThePaceWithinBounds(t *testing.T) {
	for _, c := range []struct {
		own, pace, want time.Duration
	}{
		{2 * time.Second, time.Second, 2 * time.Second},       // never faster than the node's own
		{2 * time.Second, 10 * time.Second, 10 * time.Second}, // slower when the router is loaded
		{2 * time.Second, time.Hour, maxHeartbeat},            // never slower than maxHeartbeat
		{2 * time.Minute, time.Hour, 2 * time.Minute},         // unless the node's own is slower
	} {
		if got := heartbeatInterval(c.own, c.pace); got != c.want {
			t.Errorf("heartbeatInterval(%s, %s) = %s, want %s", c.own, c.pace, got, c.want)
		}
	}
}

// A node told a slow pace stays quiet while nothing changes, and heartbeats at once when a
// job takes its GPU and when the job gives it back.
func TestNodeHeartbeatsAtThePaceAndAtOnceOnChange(t *testing.T) {
	key := newKey(t)
	r := newRig(t, key)
	id := string(keys.AddressOfKey(key))
	beats, err := r.router.SubscribeSync(protocol.HeartbeatSubject(id))
	if err != nil {
		t.Fatal(err)
	}
	rt := slowRuntime{release: make(chan struct{})}
	d := r.startNode(t, key, &fakeChain{}, rt) // its own interval: 50 ms
	if _, err := beats.NextMsg(5 * time.Second); err != nil {
		t.Fatal("no heartbeat at start")
	}
	if err := r.router.Publish(protocol.PaceSubject, protocol.Encode(protocol.Pace{HeartbeatMillis: time.Hour.Milliseconds()})); err != nil {
		t.Fatal(err)
	}
	// Within a few of its own intervals the node has taken up the pace.
	time.Sleep(200 * time.Millisecond)
	for {
		if _, err := beats.NextMsg(150 * time.Millisecond); err != nil {
			break
		}
	}
	if m, err := beats.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("a heartbeat with nothing changed under a one-minute pace: %s", m.Data)
	}
	next := func(wantFree int) {
		t.Helper()
		m, err := beats.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("no heartbeat at once on a change (want %d free)", wantFree)
		}
		hb, err := protocol.Decode[protocol.Heartbeat](m.Data)
		if err != nil || hb.FreeGPUs != wantFree {
			t.Fatalf("heartbeat %+v (%v), want %d free", hb, err, wantFree)
		}
	}
	a, _ := tensor.RandomInt8(4, 4, 1)
	if ack := r.dispatch(t, d.ID(), "job-0000000000000001", a, a); !ack.Accepted {
		t.Fatalf("dispatch declined: %s", ack.Error)
	}
	next(0)
	close(rt.release)
	next(1)
}
