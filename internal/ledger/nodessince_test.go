package ledger

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// nodes_since answers a reader with the node records written after its height, and a
// reader from before the ledger opened (a first read, at 0, say) with all of them; a
// reader that asks each time since the height of the answer before misses no change.
func TestNodesSinceListsTheNodesWrittenAfterAHeight(t *testing.T) {
	h := newHarness(t, testGenesis())
	ids := func(ns NodesSince) []string {
		var out []string
		for _, n := range ns.Nodes {
			out = append(out, string(n.Address))
		}
		return out
	}
	first := query[NodesSince](h, "nodes_since/0")
	if !first.Full || first.Height != h.height {
		t.Fatalf("a first read: %+v, want every node at height %d", first, h.height)
	}
	h.mustDo(node1Key, registerMsg)
	one := query[NodesSince](h, fmt.Sprintf("nodes_since/%d", first.Height))
	if one.Full || !slices.Equal(ids(one), []string{string(addr(node1Key))}) || one.Height != h.height {
		t.Fatalf("after a registration: %+v, want node 1 alone at height %d", one, h.height)
	}
	h.block()
	if none := query[NodesSince](h, fmt.Sprintf("nodes_since/%d", one.Height)); none.Full || len(none.Nodes) != 0 {
		t.Fatalf("after a block that wrote no node: %+v, want none", none)
	}
	h.mustDo(node2Key, registerMsg)
	h.mustDo(node1Key, Msg{Stake: &MsgStake{Role: RoleNode, Amount: omni}})
	both := query[NodesSince](h, fmt.Sprintf("nodes_since/%d", one.Height))
	want := []string{string(addr(node1Key)), string(addr(node2Key))}
	slices.Sort(want)
	if both.Full || !slices.Equal(ids(both), want) || both.Nodes[slices.Index(ids(both), string(addr(node1Key)))].Stake != registerMsg.RegisterNode.Stake+omni {
		t.Fatalf("after two blocks: %+v, want both nodes as they stand", both)
	}
	if future := query[NodesSince](h, fmt.Sprintf("nodes_since/%d", h.height+5)); !future.Full || len(future.Nodes) != 2 {
		t.Fatalf("a reader ahead of the chain: %+v, want every node", future)
	}

	// A ledger opened again over the same store knows nothing of what changed before.
	reopened, err := New(h.store)
	if err != nil {
		t.Fatal(err)
	}
	h.app = reopened
	if again := query[NodesSince](h, fmt.Sprintf("nodes_since/%d", one.Height)); !again.Full || len(again.Nodes) != 2 {
		t.Fatalf("reopened: %+v, want every node", again)
	}
	for _, bad := range []string{"nodes_since/x", "nodes_since/-1", "nodes_since/"} {
		if _, err := h.app.Query(bad); !errors.Is(err, ErrInvalidMsg) {
			t.Fatalf("%s: %v, want ErrInvalidMsg", bad, err)
		}
	}
}
