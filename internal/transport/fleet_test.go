package transport

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A simulator's fleet connection may publish the heartbeats of the nodes it simulates and
// nothing else of theirs; a participant may hear the pace but never set it.
func TestSimulatedFleetMayOnlyHeartbeat(t *testing.T) {
	fleet := newKey(t)
	n := startTestNetWith(t, func(o *ServerOptions) {
		o.SimulatedFleet = func(pub ed25519.PublicKey) []string {
			if pub.Equal(fleet.Public()) {
				return []string{"n1", "n2"}
			}
			return nil
		}
	}, "n3")
	admin := n.adminConn(t)
	got := make(chan string, 16)
	for _, subject := range []string{NodeSubjectPrefix + ">", PaceSubject} {
		if _, err := admin.Subscribe(subject, func(m *nats.Msg) { got <- m.Subject }); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 16)
	onError := func(err error) {
		if errors.Is(err, ErrPermissionDenied) {
			denied <- err
		}
	}
	o := n.dialOptions("fleet", onError)
	o.Key = fleet
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sim, err := Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	node := n.dialNode(t, "n3", onError)

	attempts := []struct {
		conn    *nats.Conn
		subject string
		allowed bool
	}{
		{sim, NodeSubjectPrefix + "n1.heartbeat", true},
		{sim, NodeSubjectPrefix + "n2.heartbeat", true},
		{sim, NodeSubjectPrefix + "n1.result", false},
		{sim, NodeSubjectPrefix + "n3.heartbeat", false},
		{sim, PaceSubject, false},
		{node, PaceSubject, false},
	}
	for _, a := range attempts {
		if err := a.conn.Publish(a.subject, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := a.conn.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if !a.allowed || s != a.subject {
				t.Fatalf("publish on %s: the router heard %s", a.subject, s)
			}
		case err := <-denied:
			if a.allowed {
				t.Fatalf("publish on %s denied: %v", a.subject, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("publish on %s: neither delivered nor denied", a.subject)
		}
	}
	// Both hear the pace.
	for _, c := range []*nats.Conn{sim, node} {
		sub, err := c.SubscribeSync(PaceSubject)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := admin.Publish(PaceSubject, []byte(`{"heartbeat_ms":5000}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("pace not heard: %v", err)
		}
		<-got // the admin's own subscription
	}
}

func TestSessionBeatsNowAndAtItsNewInterval(t *testing.T) {
	n := startTestNet(t, "n1")
	admin := n.adminConn(t)
	beats, err := admin.SubscribeSync(NodeSubjectPrefix + "n1.heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := StartSession(context.Background(), SessionOptions{
		Dial: n.dialOptions("n1", nil), Inbox: NodeSubjectPrefix + "n1.job", Handle: func(context.Context, *nats.Msg) {},
		Heartbeat: time.Hour, Beat: func() (string, []byte) { return NodeSubjectPrefix + "n1.heartbeat", []byte("{}") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next := func(what string) {
		t.Helper()
		if _, err := beats.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("%s: no heartbeat: %v", what, err)
		}
	}
	next("at start")
	s.BeatNow()
	next("after BeatNow, with an hour's interval")
	s.SetHeartbeat(20 * time.Millisecond)
	for i := range 3 {
		next("at the new interval, beat " + string(rune('1'+i)))
	}
	s.SetHeartbeat(time.Hour)
	time.Sleep(50 * time.Millisecond)
	for {
		if _, err := beats.NextMsg(100 * time.Millisecond); err != nil {
			break // drained what was sent before the change
		}
	}
	if m, err := beats.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a heartbeat after the interval went back to an hour: %s", m.Data)
	}
}
