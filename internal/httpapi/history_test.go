package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/omnisync/omnisync/api"
)

// GET /v1/nodes/{id}/history passes its page on, checks its query, and reads back through
// the Go client; GET /v1/chain/validator-rewards passes the window through.
func TestNodeHistoryAndValidatorRewardsRoutes(t *testing.T) {
	h := newTestHandler(t, newFake())
	c := newTestClient(t, h)

	all, err := c.NodeHistory(t.Context(), fakeNode, 0, 0)
	if err != nil || len(all.Entries) != 2 || all.Record.Earned != 71_500 || all.NextBefore != 0 {
		t.Fatalf("history: %+v, %v", all, err)
	}
	page, err := c.NodeHistory(t.Context(), fakeNode, 0, 1)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].JobID != "job-2" || page.NextBefore != 9 {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page, err = c.NodeHistory(t.Context(), fakeNode, page.NextBefore, 1)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Kind != "slashed" || page.Entries[0].Amount != 50_000_000 {
		t.Fatalf("second page: %+v, %v", page, err)
	}
	if _, err := c.NodeHistory(t.Context(), "omni1nobody", 0, 0); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?before=0", "?before=-3"} {
		rec := serve(h, http.MethodGet, "/v1/nodes/"+fakeNode+"/history"+q, nil)
		var body api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != http.StatusBadRequest || body.Field == "" {
			t.Errorf("%s: %d %+v, want 400 naming the field", q, rec.Code, body)
		}
	}

	w, err := c.ValidatorRewards(t.Context())
	if err != nil || w.Paid != 1_000_000 || w.Bonded != 10_000_000_000 || w.ToUnix-w.FromUnix != 86_400 {
		t.Fatalf("validator rewards: %+v, %v", w, err)
	}
}
