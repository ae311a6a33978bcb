package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// maxTxBody bounds POST /v1/chain/txs: a transaction of ledger.MaxTxBytes in base64, in JSON.
const maxTxBody = 2 * ledger.MaxTxBytes

func (s *server) getChainAccount(w http.ResponseWriter, r *http.Request) {
	acct, err := s.svc.ChainAccount(r.Context(), r.PathValue("address"))
	s.reply(w, r, acct, err)
}

func (s *server) getParams(w http.ResponseWriter, r *http.Request) {
	p, err := s.svc.Params(r.Context())
	if p.Routers == nil {
		p.Routers = []string{}
	}
	s.reply(w, r, p, err)
}

func (s *server) getValidators(w http.ResponseWriter, r *http.Request) {
	vals, err := s.svc.Validators(r.Context())
	if vals == nil {
		vals = []api.Validator{}
	}
	s.reply(w, r, vals, err)
}

func (s *server) getProposals(w http.ResponseWriter, r *http.Request) {
	props, err := s.svc.Proposals(r.Context())
	if props == nil {
		props = []api.Proposal{}
	}
	s.reply(w, r, props, err)
}

func (s *server) getProposal(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, &api.FieldError{Field: "id", Msg: fmt.Sprintf("%q is not a proposal id (an unsigned integer)", r.PathValue("id"))})
		return
	}
	prop, err := s.svc.Proposal(r.Context(), id)
	s.reply(w, r, prop, err)
}

func (s *server) getUnbonding(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.Unbonding(r.Context(), r.PathValue("address"))
	if list == nil {
		list = []api.Unbonding{}
	}
	s.reply(w, r, list, err)
}

func (s *server) broadcastTx(w http.ResponseWriter, r *http.Request) {
	var req api.BroadcastTxRequest
	release, err := s.readJSON(w, r, maxTxBody, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
	switch {
	case len(req.Tx) == 0:
		s.writeError(w, r, &api.FieldError{Field: "tx", Msg: "required: a signed transaction, base64"})
		return
	case len(req.Tx) > ledger.MaxTxBytes:
		s.writeError(w, r, &api.FieldError{Field: "tx", Msg: fmt.Sprintf("%d bytes exceeds the %d-byte limit", len(req.Tx), ledger.MaxTxBytes)})
		return
	}
	res, err := s.svc.BroadcastTx(r.Context(), req.Tx)
	s.reply(w, r, res, txError(err))
}

// txError maps the ledger's rejection of a transaction (an error wrapping a ledger
// sentinel, as the chain client returns it) to the API's sentinels, keeping the ledger's
// message. Errors that already carry an API sentinel, and nil, pass through.
func txError(err error) error {
	if status, _ := api.HTTPStatus(err); err == nil || status != http.StatusInternalServerError {
		return err
	}
	switch ledger.CodeFor(err) {
	case ledger.CodeInternal:
		return err
	case ledger.CodeInsufficientFunds:
		return &rejectedTx{err: err, kind: api.ErrInsufficientFunds}
	case ledger.CodeWrongSequence, ledger.CodeDuplicate:
		return &rejectedTx{err: err, kind: api.ErrConflict}
	case ledger.CodeTooManyPending:
		// the signer's earlier txs fill its queue: this one is fine once a block takes them
		return &rejectedTx{err: err, kind: api.ErrTooManyRequests}
	case ledger.CodeUnauthorized:
		// the signer is known (its signature verified) but may not do this
		return &rejectedTx{err: err, kind: api.ErrForbidden}
	}
	// Malformed, badly signed, for another chain, invalid, locked by vesting, below the
	// minimum stake, naming something that does not exist: the tx itself is wrong.
	return &api.FieldError{Field: "tx", Msg: err.Error()}
}

// rejectedTx is a ledger rejection that travels as kind, with the ledger's own message
// (which already names the problem, e.g. "insufficient funds: … has 1 OMNI, needs 2 OMNI").
type rejectedTx struct {
	err  error
	kind error
}

func (e *rejectedTx) Error() string   { return e.err.Error() }
func (e *rejectedTx) Unwrap() []error { return []error{e.kind, e.err} }

// getBlocks is GET /v1/chain/blocks?limit=N: the latest blocks, newest first.
func (s *server) getBlocks(w http.ResponseWriter, r *http.Request) {
	if s.blocks == nil {
		s.writeError(w, r, fmt.Errorf("%w: this server reads no blocks", api.ErrUnavailable))
		return
	}
	limit := 20
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			s.writeError(w, r, &api.FieldError{Field: "limit", Msg: fmt.Sprintf("%q: want 1 to 100", l)})
			return
		}
		limit = n
	}
	blocks, err := s.blocks(r.Context(), limit)
	if err != nil {
		err = fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	s.reply(w, r, blocks, err)
}
