package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// getNodeHistory is GET /v1/nodes/{id}/history?before=H&limit=N.
func (s *server) getNodeHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var before int64
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			s.writeError(w, r, &api.FieldError{Field: "before", Msg: fmt.Sprintf("%q: want a block height", b)})
			return
		}
		before = n
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > ledger.MaxHistoryLimit {
			s.writeError(w, r, &api.FieldError{Field: "limit", Msg: fmt.Sprintf("%q: want 1 to %d", l, ledger.MaxHistoryLimit)})
			return
		}
		limit = n
	}
	hist, err := s.svc.NodeHistory(r.Context(), r.PathValue("id"), before, limit)
	if hist.Entries == nil {
		hist.Entries = []api.NodeHistoryEntry{}
	}
	s.reply(w, r, hist, err)
}

// getValidatorRewards is GET /v1/chain/validator-rewards.
func (s *server) getValidatorRewards(w http.ResponseWriter, r *http.Request) {
	win, err := s.svc.ValidatorRewards(r.Context())
	s.reply(w, r, win, err)
}
