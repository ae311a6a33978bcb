package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/explorer"
)

// Service is what the API serves; the router implements it. Errors should wrap the api
// sentinels (api.ErrNotFound, …) or be *api.FieldError so they map to the right status.
type Service interface {
	SubmitJob(ctx context.Context, req api.SubmitJobRequest) (api.Job, error)
	Job(ctx context.Context, id string) (api.Job, error)
	Nodes(ctx context.Context) ([]api.Node, error)
	Account(ctx context.Context, address string) (api.Account, error)
	Supply(ctx context.Context) (api.Supply, error)

	// Chain state, as the ledger reports it (see api/chain.go).
	ChainAccount(ctx context.Context, address string) (api.ChainAccount, error)
	Params(ctx context.Context) (api.Params, error)
	Validators(ctx context.Context) ([]api.Validator, error)
	Proposals(ctx context.Context) ([]api.Proposal, error)
	Proposal(ctx context.Context, id uint64) (api.Proposal, error)
	Unbonding(ctx context.Context, address string) ([]api.Unbonding, error)
	// BroadcastTx submits a signed transaction and waits for it to commit. A transaction
	// the ledger rejects may be returned as the ledger's error (wrapping its sentinel, as
	// ledger.ErrorFor builds it): the handler maps its code to a status.
	BroadcastTx(ctx context.Context, tx []byte) (api.BroadcastTxResponse, error)

	// UploadInput stores body as the declared input name of a job whose escrow has
	// committed, checking it against the spec's size and digest while storing, and never
	// holding it whole. Errors wrap api.ErrNotFound (unknown job or input name),
	// api.ErrConflict (input already stored, or the job is not awaiting inputs), or are a
	// *api.FieldError (size or digest mismatch). A read error from body (the client too
	// slow, or past api.MaxUploadBytes) should be wrapped with %w.
	UploadInput(ctx context.Context, jobID, name string, body io.Reader) error
	// JobOutput returns a job's output to its consumer. auth has been parsed but not
	// checked: the service checks that auth.Address is the job's consumer (api.ErrForbidden
	// if not) and that its signature and expiry hold (api.VerifyOutputAuth with
	// api.MaxOutputAuthTTL; api.ErrUnauthorized if not).
	JobOutput(ctx context.Context, jobID string, auth api.OutputAuth) (api.JobOutput, error)
	// Jobs lists auth.Address's jobs. auth has been parsed but not checked: the service
	// checks it with api.VerifyJobListAuth and api.MaxOutputAuthTTL (api.ErrUnauthorized).
	// q has been checked for its form (limit in range).
	Jobs(ctx context.Context, auth api.OutputAuth, q api.JobQuery) (api.JobList, error)
	// JobLogs returns a job's logs from position from to its consumer, checking auth as
	// JobOutput does (the same signed request reads a job's output and its logs).
	JobLogs(ctx context.Context, jobID string, auth api.OutputAuth, node string, from int64) (api.JobLogs, error)
	// Stats reports the router's recent work (api.RouterStats).
	Stats(ctx context.Context) (api.RouterStats, error)
	// NodeHistory reads a page of a node's settled jobs, failures and slashes, newest
	// first, below height before (0: the newest), at most limit (0: the ledger's default).
	NodeHistory(ctx context.Context, node string, before int64, limit int) (api.NodeHistory, error)
	// ValidatorRewards reads what the validator reward pool paid over recent blocks.
	ValidatorRewards(ctx context.Context) (api.RewardWindow, error)
}

// Options configures NewHandler.
type Options struct {
	Service Service      // required
	Logger  *slog.Logger // nil discards
	// Info is shown at GET /v1/health beside "status", e.g. chain_id and chain_rpc.
	Info map[string]string
	// Live, when set, adds what changes to GET /v1/health (a router's cluster peers, say).
	Live func() map[string]string
	// Blocks, when set, reads the chain's latest blocks for GET /v1/chain/blocks (a
	// chain.Client's RecentBlocks); without it that route answers 503.
	Blocks func(ctx context.Context, limit int) ([]api.Block, error)
	// PollInterval is how often an event stream asks Service.Job for changes; default 250ms.
	// A Service that is a JobWatcher wakes the stream instead, which then asks only every
	// PollInterval or 2s, whichever is longer.
	PollInterval time.Duration
	// Metrics is the registry /metrics serves; nil means a fresh one with Go and process
	// collectors. Pass one to serve the daemon's own collectors beside the HTTP ones.
	Metrics *prometheus.Registry
	// Limits bound connections, time and request-body memory; zero fields take defaults.
	Limits Limits
}

// Defaults.
const (
	DefaultPollInterval = 250 * time.Millisecond
	keepAliveInterval   = 15 * time.Second
)

// server is the handler NewHandler returns.
type server struct {
	svc       Service
	log       *slog.Logger
	info      map[string]string
	live      func() map[string]string
	blocks    func(ctx context.Context, limit int) ([]api.Block, error)
	poll      time.Duration
	keepAlive time.Duration
	limits    Limits
	budget    *budget // memory for request bodies in flight (Limits.BodyBudget)
	mux       *http.ServeMux
	routes    map[string]bool // registered patterns, the only values of the route label
	metrics   *metrics
}

// NewHandler returns the API's handler: the /v1 routes, /metrics and, at /, the web
// explorer (package explorer), whose pages read these routes from the browser.
func NewHandler(opts Options) (http.Handler, error) {
	if opts.Service == nil {
		return nil, errors.New("httpapi: Options.Service is required")
	}
	if opts.PollInterval < 0 {
		return nil, fmt.Errorf("httpapi: Options.PollInterval %v is negative", opts.PollInterval)
	}
	limits, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &server{
		svc:       opts.Service,
		log:       opts.Logger,
		info:      maps.Clone(opts.Info),
		live:      opts.Live,
		blocks:    opts.Blocks,
		poll:      opts.PollInterval,
		keepAlive: keepAliveInterval,
		limits:    limits,
		budget:    newBudget(limits.BodyBudget),
		mux:       http.NewServeMux(),
		routes:    map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.poll == 0 {
		s.poll = DefaultPollInterval
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	for _, rt := range s.routeTable() {
		s.mux.HandleFunc(rt.pattern, rt.handler)
		s.routes[rt.pattern] = true
	}
	// The explorer is a client of the API, not part of it: its pages and files stay out of
	// routeTable and so out of openapi.json, and none of its patterns is under /v1.
	ex := explorer.Handler()
	for _, pattern := range explorer.Patterns {
		s.mux.Handle(pattern, ex)
		s.routes[pattern] = true
	}
	return s, nil
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

// routeTable lists every API route; openapi.json must describe exactly these (a test
// checks). The explorer's pages are mounted beside them in NewHandler.
func (s *server) routeTable() []route {
	return []route{
		{"POST /v1/jobs", s.submitJob},
		{"GET /v1/jobs", s.listJobs},
		{"GET /v1/jobs/{id}", s.getJob},
		{"GET /v1/jobs/{id}/events", s.jobEvents},
		{"PUT /v1/jobs/{id}/inputs/{name}", s.uploadInput},
		{"GET /v1/jobs/{id}/output", s.jobOutput},
		{"GET /v1/jobs/{id}/logs", s.jobLogs},
		{"GET /v1/nodes", s.getNodes},
		{"GET /v1/nodes/{id}/history", s.getNodeHistory},
		{"GET /v1/accounts/{address}", s.getAccount},
		{"GET /v1/chain/supply", s.getSupply},
		{"GET /v1/chain/accounts/{address}", s.getChainAccount},
		{"GET /v1/chain/params", s.getParams},
		{"GET /v1/chain/blocks", s.getBlocks},
		{"GET /v1/chain/validators", s.getValidators},
		{"GET /v1/chain/nodes", s.getNodes}, // the same list as /v1/nodes
		{"GET /v1/chain/proposals", s.getProposals},
		{"GET /v1/chain/proposals/{id}", s.getProposal},
		{"GET /v1/chain/unbonding/{address}", s.getUnbonding},
		{"GET /v1/chain/validator-rewards", s.getValidatorRewards},
		{"POST /v1/chain/txs", s.broadcastTx},
		{"GET /v1/health", s.getHealth},
		{"GET /v1/stats", s.getStats},
		{"GET /v1/openapi.json", s.getOpenAPI},
		{"GET /metrics", s.metrics.handler.ServeHTTP},
	}
}

// ServeHTTP routes r, and around every request recovers panics, counts, times and logs it,
// and keeps the connection's deadlines (see bodyReader).
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Body != nil && r.Body != http.NoBody {
		// A copy of r: net/http must still see its own body type after the handler, to
		// close the connection rather than drain a large unread remainder before replying.
		r = r.WithContext(r.Context())
		r.Body = s.newBodyReader(w, r.Body)
	} else {
		// Nothing to read: the handler has WriteTimeout to answer, and so has its context
		// (net/http ends it when a read deadline passes, which would otherwise be ReadTimeout).
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(s.limits.WriteTimeout))
	}
	_, pattern := s.mux.Handler(r)
	label := pattern
	if !s.routes[label] {
		label = "unmatched" // 404s, 405s and redirects: keep the label set bounded
	}
	rec := &recorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("http handler panicked", "route", label, "panic", p, "stack", string(debug.Stack()))
			if !rec.wroteHeader {
				writeJSON(rec, http.StatusInternalServerError, api.Error{Error: "internal error", Code: api.CodeInternal})
			}
		}
		elapsed := time.Since(start)
		s.metrics.observe(label, rec.status(), elapsed)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", label), slog.Int("status", rec.status()),
			slog.Int64("bytes", rec.bytes), slog.Duration("duration", elapsed))
	}()
	if pattern == "" {
		s.notRouted(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// notRouted answers what the mux would (404, or 405 with Allow), but in JSON.
func (s *server) notRouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	status := probe.code
	if status == 0 || status == http.StatusOK {
		status = http.StatusNotFound
	}
	code := api.CodeNotFound
	if status != http.StatusNotFound {
		code = api.CodeBadRequest
	}
	writeJSON(w, status, api.Error{
		Error: fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, lowerStatusText(status)),
		Code:  code,
	})
}

// statusProbe records only the status a handler chooses.
type statusProbe struct {
	header http.Header
	code   int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
func (p *statusProbe) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

// recorder notes the status and size of a response on its way out.
type recorder struct {
	http.ResponseWriter
	code        int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// FlushError lets http.ResponseController flush through the recorder (event streams).
func (r *recorder) FlushError() error {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap exposes the underlying writer to http.ResponseController (deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if !r.wroteHeader {
		return http.StatusOK // nothing written: net/http sends 200
	}
	return r.code
}
