package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/transport"
)

// standingChain answers the node's record (nil: not registered) and the params.
type standingChain struct {
	fakeChain
	record *ledger.Node
}

func (c *standingChain) Query(_ context.Context, path string, v any) error {
	switch {
	case strings.HasPrefix(path, "node/") && c.record != nil:
		b, _ := json.Marshal(c.record)
		return json.Unmarshal(b, v)
	case path == "params":
		b, _ := json.Marshal(ledger.DefaultParams())
		return json.Unmarshal(b, v)
	}
	return fmt.Errorf("%w: %s", ledger.ErrNotFound, path)
}

// A node the router refuses stops, saying what to do, when the chain no longer lists it
// as active; while the chain says it is active (a restarted router that does not know it
// yet) it keeps reconnecting.
func TestRefusedNodeStopsWhenTheChainDropsIt(t *testing.T) {
	refused := fmt.Errorf("%w: nats: authorization violation", transport.ErrUnauthorized)
	for _, tt := range []struct {
		name   string
		record *ledger.Node
		err    error
		want   string // "" when the node keeps going
	}{
		{"unstaked", &ledger.Node{Status: ledger.NodeInactive, Stake: 450 * ledger.UomniPerOMNI}, refused, "stake more with `omnisync stake add --role node"},
		{"unregistered", nil, refused, "register it with `omnisync node register`"},
		{"active", &ledger.Node{Status: ledger.NodeActive, Stake: 500 * ledger.UomniPerOMNI}, refused, ""},
		{"not a refusal", nil, errors.New("websocket: close 1006"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(Options{Key: newKey(t), Chain: &standingChain{record: tt.record}, Runtime: slowRuntime{},
				Hardware: ledger.Hardware{GPUs: 1}, PricePerHour: 1})
			if err != nil {
				t.Fatal(err)
			}
			d.onConnError(tt.err)
			select {
			case <-d.Done():
				if tt.want == "" {
					t.Fatalf("stopped: %v", d.Err())
				}
				if !errors.Is(d.Err(), ErrNotServing) || !strings.Contains(d.Err().Error(), tt.want) {
					t.Fatalf("stopped with %v, want ErrNotServing saying %q", d.Err(), tt.want)
				}
			case <-time.After(time.Second):
				if tt.want != "" {
					t.Fatal("the node kept reconnecting")
				}
				if d.Err() != nil {
					t.Fatalf("Err %v without stopping", d.Err())
				}
			}
		})
	}
}
