package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Client calls the REST API of an OmniSync daemon, or of any of several (see NewClient).
// Every call takes its deadline from ctx; leave HTTP.Timeout zero, or it would also cut the
// event streams WaitJob follows.
type Client struct {
	// BaseURL is the API's URL, e.g. "http://127.0.0.1:8080", without the /v1: the first of
	// NewClient's URLs. Setting it to another points the client at that one URL alone.
	BaseURL string
	HTTP    *http.Client // nil means one on the clients' shared pool of connections

	// PollInterval is how often WaitJob asks for the job once its event stream has broken;
	// zero means one second.
	PollInterval time.Duration

	// Retries429 is how many times a request answered 429 Too Many Requests (the signer
	// has too many transactions waiting for a block, or a router holds the job without
	// its escrow for a few seconds more) is sent again, after the wait its
	// Retry-After asks for; zero means DefaultRetries429, negative never. Such a request
	// changed nothing, so sending it again is safe.
	Retries429 int

	routers *urlList // NewClient's URLs when it was given several; nil for one
}

// urlList is a client's several URLs and the one requests start at: the last that answered.
type urlList struct {
	urls  []string
	start atomic.Int32
}

// DefaultRetries429 is Client.Retries429's default, and maxRetryAfter caps one wait.
const (
	DefaultRetries429 = 3
	maxRetryAfter     = 10 * time.Second
)

// NewClient returns a client for the daemon at baseURL, or for any of several daemons
// given as a comma-separated list ("http://a:7070,http://b:7070"), such as the routers of
// one cluster: a request one of them does not serve goes on to the next (see Client.do).
// A URL may end in /v1, as the daemons print it ("http://127.0.0.1:7070/v1"), or not: every
// call adds /v1 once.
func NewClient(baseURL string) *Client {
	var urls []string
	for u := range strings.SplitSeq(baseURL, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if u = strings.TrimRight(strings.TrimSuffix(u, "/v1"), "/"); u != "" {
			urls = append(urls, u)
		}
	}
	c := &Client{HTTP: &http.Client{Transport: transport}}
	switch len(urls) {
	case 0:
	case 1:
		c.BaseURL = urls[0]
	default:
		c.BaseURL, c.routers = urls[0], &urlList{urls: urls}
	}
	return c
}

// urls returns the URLs a request may go to, in the order of the list, and the list they
// come from: nil when the client has one URL, or when BaseURL was changed after NewClient.
func (c *Client) urls() ([]string, *urlList) {
	if l := c.routers; l != nil && l.urls[0] == c.BaseURL {
		return l.urls, l
	}
	return []string{c.BaseURL}, nil
}

// transport is the clients' shared connection pool: http.DefaultTransport's settings, but
// keeping up to 128 idle connections to a router rather than 2. A program that sends
// more than two requests at once (a consumer with jobs in flight, each followed by an
// event stream) otherwise opened and closed a TCP connection for nearly every request,
// leaving tens of thousands of ports in TIME_WAIT under load.
//
// Its connections write through a buffer of writeBufferSize rather than 4 KiB.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
	t.WriteBufferSize = writeBufferSize
	return t
}()

// writeBufferSize is how much of a request a connection of the pool gathers before it
// writes to the socket: a request that fits goes out in one write. With net/http's 4 KiB,
// a job submitted with two 4 KiB inputs (a 64×64 int8 matmul, 10 KiB as multipart) took
// two writes, and a fifth more CPU over loopback (BenchmarkSubmitJobOverHTTP). 16 KiB
// leaves such a job room for a longer spec. Every open connection holds one: 2 MiB for
// 128 of them, rather than 512 KiB.
const writeBufferSize = 16 << 10

// ResponseError is a non-2xx response. It wraps the sentinel its status stands for (see
// HTTPStatus) and, when the server named a field, a *FieldError, so errors.Is and errors.As
// work on the client as they do inside the server.
type ResponseError struct {
	StatusCode int
	Body       Error         // as sent by the server; Body.Error is the message
	RetryAfter time.Duration // from the Retry-After header, in seconds; 0 when absent
}

func (e *ResponseError) Error() string {
	if e.Body.Error != "" {
		return e.Body.Error
	}
	return fmt.Sprintf("%d %s", e.StatusCode, strings.ToLower(http.StatusText(e.StatusCode)))
}

func (e *ResponseError) Unwrap() []error {
	var errs []error
	if s := sentinelFor(e.StatusCode); s != nil {
		errs = append(errs, s)
	}
	if e.Body.Field != "" {
		msg := strings.TrimPrefix(e.Body.Error, e.Body.Field+": ")
		errs = append(errs, &FieldError{Field: e.Body.Field, Msg: msg})
	}
	return errs
}

// SubmitJob is POST /v1/jobs. A request with inline inputs goes as multipart/form-data
// (EncodeSubmitMultipart), the inputs' bytes as they are; one without, as JSON. A client of
// several URLs sends it on to the next when one gives no answer. Should the first have
// taken it after all, the next answers with the job once its escrow has committed, and
// before that ErrConflict (the first broadcasts the escrow) or ErrTooManyRequests (it looks
// for an escrow whose answer it lost), which the client waits out (Retries429).
func (c *Client) SubmitJob(ctx context.Context, req SubmitJobRequest) (Job, error) {
	var job Job
	if len(req.InputData) == 0 {
		err := c.call(ctx, http.MethodPost, "/v1/jobs", req, &job)
		return job, err
	}
	body, contentType, err := EncodeSubmitMultipart(req)
	if err != nil {
		return job, fmt.Errorf("POST /v1/jobs: encoding request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/jobs", bytes.NewReader(body))
	if err != nil {
		return job, err
	}
	hr.Header.Set("Content-Type", contentType)
	hr.Header.Set("Accept", "application/json")
	resp, err := c.do(hr)
	if err != nil {
		return job, err
	}
	defer closeBody(resp.Body)
	if err := json.NewDecoder(resp.Body).Decode(&job); err != nil {
		return job, fmt.Errorf("POST /v1/jobs: decoding response: %w", err)
	}
	return job, nil
}

// Job is GET /v1/jobs/{id}.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var job Job
	err := c.call(ctx, http.MethodGet, jobPath(id), nil, &job)
	return job, err
}

// Nodes is GET /v1/nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var nodes []Node
	err := c.call(ctx, http.MethodGet, "/v1/nodes", nil, &nodes)
	return nodes, err
}

// Account is GET /v1/accounts/{address}.
func (c *Client) Account(ctx context.Context, address string) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+url.PathEscape(address), nil, &acct)
	return acct, err
}

// Supply is GET /v1/chain/supply.
func (c *Client) Supply(ctx context.Context) (Supply, error) {
	var s Supply
	err := c.call(ctx, http.MethodGet, "/v1/chain/supply", nil, &s)
	return s, err
}

// Health is GET /v1/health: {"status": "ok"} plus what the daemon chose to show.
func (c *Client) Health(ctx context.Context) (map[string]string, error) {
	var h map[string]string
	err := c.call(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}

func jobPath(id string) string { return "/v1/jobs/" + url.PathEscape(id) }

// UploadInput is PUT /v1/jobs/{id}/inputs/{name}: it streams size bytes from r as the job's
// declared input name, for a job submitted without it inline. The server checks the bytes
// against the spec's size and digest as they are stored; a mismatch is a *FieldError. A
// negative size sends the body chunked, of unknown length.
func (c *Client) UploadInput(ctx context.Context, jobID, name string, r io.Reader, size int64) error {
	path := jobPath(jobID) + "/inputs/" + url.PathEscape(name)
	if r == nil {
		r = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, path, r)
	if err != nil {
		return err
	}
	// NewRequest guesses the length only for in-memory readers; say what the caller knows
	// (-1 means unknown), never 0 for a body that has bytes.
	req.ContentLength = max(size, -1)
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	closeBody(resp.Body)
	return nil
}

// JobOutput is GET /v1/jobs/{id}/output, authorised by auth (see SignOutputAuth). It checks
// the bytes against the digest the server names; JobOutput.Verified says whether the chain
// has settled them as verified, and until it has, they are only the node's word.
func (c *Client) JobOutput(ctx context.Context, jobID string, auth OutputAuth) (JobOutput, error) {
	path := jobPath(jobID) + "/output"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return JobOutput{}, err
	}
	req.Header.Set("Authorization", auth.Header())
	req.Header.Set("Accept", "application/octet-stream")
	resp, err := c.do(req)
	if err != nil {
		return JobOutput{}, err
	}
	defer closeBody(resp.Body)
	out := JobOutput{JobID: jobID, Digest: resp.Header.Get(HeaderDigest), Status: resp.Header.Get(HeaderJobStatus)}
	switch v := resp.Header.Get(HeaderVerified); v {
	case "true", "false":
		out.Verified = v == "true"
	default:
		return JobOutput{}, fmt.Errorf("GET %s: %s header is %q, want true or false", path, HeaderVerified, v)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxUploadBytes+1))
	if err != nil {
		return JobOutput{}, fmt.Errorf("GET %s: reading output: %w", path, err)
	}
	if got := DigestOf(data); got != out.Digest {
		return JobOutput{}, fmt.Errorf("GET %s: output of %d bytes has digest %s, server says %q", path, len(data), got, out.Digest)
	}
	out.Data, out.Size = data, int64(len(data))
	return out, nil
}

// Jobs lists the signer's jobs (GET /v1/jobs), newest first; auth is SignJobListAuth's.
func (c *Client) Jobs(ctx context.Context, auth OutputAuth, q JobQuery) (JobList, error) {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	path := "/v1/jobs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out JobList
	return out, c.getSigned(ctx, path, auth, 64<<20, &out)
}

// JobLogs reads a job's logs from position from (GET /v1/jobs/{id}/logs), of node, or of the
// job's node when node is ""; auth is the consumer's SignOutputAuth for the job.
func (c *Client) JobLogs(ctx context.Context, jobID string, auth OutputAuth, node string, from int64) (JobLogs, error) {
	v := url.Values{"from": {strconv.FormatInt(from, 10)}}
	if node != "" {
		v.Set("node", node)
	}
	var out JobLogs
	return out, c.getSigned(ctx, jobPath(jobID)+"/logs?"+v.Encode(), auth, 16<<20, &out)
}

// getSigned GETs path with auth's OmniSig header and decodes at most limit bytes of the
// JSON answer into out.
func (c *Client) getSigned(ctx context.Context, path string, auth OutputAuth, limit int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth.Header())
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// Stats reads a router's recent work (GET /v1/stats).
func (c *Client) Stats(ctx context.Context) (RouterStats, error) {
	var out RouterStats
	return out, c.call(ctx, http.MethodGet, "/v1/stats", nil, &out)
}

// call sends in (when non-nil) as JSON and decodes a 2xx response into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in, "application/json")
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding response: %w", method, path, err)
	}
	return nil
}

// send returns the response to a request carrying in (when non-nil) as JSON, or a
// *ResponseError for a non-2xx status.
func (c *Client) send(ctx context.Context, method, path string, in any, accept string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	return c.do(req)
}

// do sends req, whose URL is the path alone ("/v1/jobs"), to the client's URL and returns
// a 2xx response, or a *ResponseError. A client of several URLs starts at the one that last
// answered, and while a URL does not answer, or answers 502, 503 or 504, it sends a request
// that may be replayed (see replayable) on to the next, each URL once; when none serves it,
// the error is a *FailoverError naming what each did. Where req's context has a deadline,
// each URL but the last has an equal share of what is left of it to answer (its body may
// then take the rest), so that a URL that never answers does not keep the others from
// being tried.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	urls, list := c.urls()
	first := 0
	if list != nil {
		first = int(list.start.Load())
	}
	deadline, bounded := req.Context().Deadline()
	var failed []FailedURL
	for i := range urls {
		n := (first + i) % len(urls)
		var share time.Duration
		if bounded && i < len(urls)-1 {
			share = max(time.Until(deadline)/time.Duration(len(urls)-i), time.Millisecond)
		}
		resp, err := c.doAt(req, urls[n], i == 0, share)
		if err == nil || !unserved(err) {
			if list != nil {
				list.start.Store(int32(n))
			}
			return resp, err
		}
		failed = append(failed, FailedURL{URL: urls[n], Err: err})
		if !replayable(req) || req.Context().Err() != nil {
			break
		}
	}
	if len(failed) == 1 {
		return nil, failed[0].Err
	}
	return nil, &FailoverError{Method: req.Method, Path: req.URL.String(), Failed: failed}
}

// doAt sends req to base, with req's own body the first time and a copy from GetBody after
// that, and returns a 2xx response, or a *ResponseError. A 429 is sent again, up to
// Retries429 times, when the request's body can be replayed. A share above zero is how
// long base has to answer (see do).
func (c *Client) doAt(orig *http.Request, base string, first bool, share time.Duration) (resp *http.Response, err error) {
	ctx := orig.Context()
	if share > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		timer := time.AfterFunc(share, cancel)
		defer func() {
			if !timer.Stop() && err != nil {
				err = fmt.Errorf("no answer within %v, this URL's share of the request's time: %w", share.Round(time.Millisecond), err)
			}
			if err != nil {
				cancel()
				return
			}
			resp.Body = &closeCancels{resp.Body, cancel} // the body may take the rest of the time
		}()
	}
	req, err := http.NewRequestWithContext(ctx, orig.Method, base+orig.URL.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header = orig.Header.Clone()
	req.Body, req.GetBody, req.ContentLength = orig.Body, orig.GetBody, orig.ContentLength
	if !first && orig.GetBody != nil {
		if req.Body, err = orig.GetBody(); err != nil {
			return nil, err
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Transport: transport}
	}
	retries := c.Retries429
	if retries == 0 {
		retries = DefaultRetries429
	}
	for attempt := 0; ; attempt++ {
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err // a *url.Error naming the method and URL
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		rerr := readResponseError(resp)
		closeBody(resp.Body)
		wait, ok := RetryAfter(rerr)
		if !ok || resp.StatusCode != http.StatusTooManyRequests || attempt >= retries || (req.Body != nil && req.GetBody == nil) {
			return nil, rerr
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, rerr
			}
		}
		t := time.NewTimer(max(wait, 100*time.Millisecond))
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, rerr
		case <-t.C:
		}
	}
}

// closeCancels is a response body whose Close also ends the context it was read under.
type closeCancels struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *closeCancels) Close() error {
	defer b.cancel()
	return b.ReadCloser.Close()
}

// unserved reports whether err says a URL did not serve a request, which another URL may:
// no response came, or a gateway or the server said it is unavailable.
func unserved(err error) bool {
	var re *ResponseError
	if !errors.As(err, &re) {
		return true
	}
	switch re.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// replayable reports whether req may go to another URL after it may have reached a server
// already: a read, or a signed transaction (a job's submission, a broadcast) whose sequence
// lets it take effect once however often it is sent; and only with a body that can be read
// again. An input's upload, its body streamed, is sent once.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return req.URL.Path == "/v1/jobs" || req.URL.Path == "/v1/chain/txs"
	}
	return false
}

// FailoverError is a request that none of a client's URLs served: each did not answer, or
// answered 502, 503 or 504. It wraps each URL's error, so errors.Is(err, ErrUnavailable) and
// errors.As(err, &responseErr) see the answers, and RetryAfter the first one's wait.
type FailoverError struct {
	Method, Path string
	Failed       []FailedURL // in the order tried
}

// FailedURL is one URL that did not serve a request, and its error.
type FailedURL struct {
	URL string
	Err error
}

func (e *FailoverError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		var (
			re *ResponseError
			ue *url.Error
		)
		switch {
		case errors.As(f.Err, &re) && re.Body.Error != "":
			fmt.Fprintf(&b, "%s answered %d (%s)", f.URL, re.StatusCode, re.Body.Error)
		case re != nil:
			fmt.Fprintf(&b, "%s answered %v", f.URL, re)
		case errors.As(f.Err, &ue):
			fmt.Fprintf(&b, "%s did not answer (%v)", f.URL, ue.Err)
		default:
			fmt.Fprintf(&b, "%s did not answer (%v)", f.URL, f.Err)
		}
	}
	return b.String()
}

func (e *FailoverError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// RetryAfter reports whether err is a response that says to try again later (429 Too
// Many Requests, or 503 Service Unavailable) and how long the server asked to wait, at
// most ten seconds; 0 when it did not say.
func RetryAfter(err error) (time.Duration, bool) {
	var re *ResponseError
	if !errors.As(err, &re) || (re.StatusCode != http.StatusTooManyRequests && re.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	return min(re.RetryAfter, maxRetryAfter), true
}

// maxErrorBytes bounds how much of an error response is read.
const maxErrorBytes = 1 << 20

func readResponseError(resp *http.Response) error {
	e := &ResponseError{StatusCode: resp.StatusCode}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(min(secs, 3600)) * time.Second
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if json.Unmarshal(b, &e.Body) != nil {
		e.Body = Error{} // not ours, e.g. a proxy's HTML page: the status says enough
	}
	return e
}

// closeBody drains what little is left so the connection can be reused.
func closeBody(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// streamIdleTimeout is how long WaitJob waits for any byte of the event stream before
// treating it as broken; the server sends a keep-alive comment well within it.
const streamIdleTimeout = time.Minute

var errStreamBroken = errors.New("job event stream broken")

// WaitJob follows /v1/jobs/{id}/events until the job reaches a final status and returns it,
// calling onUpdate (which may be nil) once for each distinct state, in order. If the stream
// breaks, a client of several URLs follows it again from the next URL, as many times as it
// has URLs. After that, or when no stream opens, it polls Job instead, every PollInterval,
// riding out network errors and 503s until ctx ends; other error responses (an unknown
// job, say) are returned at once.
func (c *Client) WaitJob(ctx context.Context, id string, onUpdate func(Job)) (Job, error) {
	w := &jobWatch{onUpdate: onUpdate}
	urls, _ := c.urls()
	for range urls {
		job, err := c.followJobEvents(ctx, id, w)
		switch {
		case err == nil:
			return job, nil
		case ctx.Err() != nil:
			return Job{}, fmt.Errorf("waiting for job %s: %w", id, ctx.Err())
		case !transient(err):
			return Job{}, err
		}
		if !errors.Is(err, errStreamBroken) {
			break // no stream opened at any URL
		}
	}
	return c.pollJob(ctx, id, w)
}

// jobWatch passes each distinct state of a job to onUpdate once.
type jobWatch struct {
	onUpdate func(Job)
	last     []byte
}

func (w *jobWatch) see(job Job) {
	if w.onUpdate == nil {
		return // nobody to tell: no need to compare
	}
	b, _ := json.Marshal(job) // plain data
	if bytes.Equal(b, w.last) {
		return
	}
	w.last = b
	if w.onUpdate != nil {
		w.onUpdate(job)
	}
}

// followJobEvents follows the job's event stream until a final status; an error wrapping
// errStreamBroken means the stream opened and then broke, and the next request starts at
// the URL after the one that served it.
func (c *Client) followJobEvents(ctx context.Context, id string, w *jobWatch) (_ Job, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(streamIdleTimeout, cancel)
	defer idle.Stop()

	resp, err := c.send(ctx, http.MethodGet, jobPath(id)+"/events", nil, "text/event-stream")
	if err != nil {
		return Job{}, err
	}
	defer closeBody(resp.Body)
	if _, list := c.urls(); list != nil {
		served := list.start.Load() // as do has just stored it, unless a request since moved it: harmless
		defer func() {
			if errors.Is(err, errStreamBroken) {
				list.start.CompareAndSwap(served, (served+1)%int32(len(list.urls)))
			}
		}()
	}
	events := newSSEReader(&idleReader{r: resp.Body, timer: idle})
	// Without onUpdate only the job's final state matters, and the server ends the stream
	// after it: each event's job is kept as sent, and only the last is decoded, once the
	// stream has ended. (Decoding every event, five or so a job, was most of what
	// following a job cost a consumer.)
	var last []byte
	for {
		ev, err := events.Next()
		if err != nil {
			if last != nil {
				if job, derr := decodeJobEvent(last); derr == nil && Final(job.Status) {
					return job, nil
				}
			}
			return Job{}, fmt.Errorf("%w: %w", errStreamBroken, err)
		}
		switch ev.Name {
		case EventJob:
			if w.onUpdate == nil {
				last = append(last[:0], ev.Data...)
				continue
			}
			job, err := decodeJobEvent(ev.Data)
			if err != nil {
				return Job{}, err
			}
			w.see(job)
			if Final(job.Status) {
				return job, nil
			}
		case EventError:
			// The server gave up on the stream; polling reports the error properly if it lasts.
			return Job{}, fmt.Errorf("%w: server sent error: %s", errStreamBroken, ev.Data)
		}
	}
}

// decodeJobEvent decodes a job event's data; an error wraps errStreamBroken.
func decodeJobEvent(data []byte) (Job, error) {
	var job Job
	if err := json.Unmarshal(data, &job); err != nil {
		return Job{}, fmt.Errorf("%w: decoding job event: %w", errStreamBroken, err)
	}
	return job, nil
}

func (c *Client) pollJob(ctx context.Context, id string, w *jobWatch) (Job, error) {
	interval := c.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		job, err := c.Job(ctx, id)
		switch {
		case err == nil:
			w.see(job)
			if Final(job.Status) {
				return job, nil
			}
		case ctx.Err() != nil:
			return Job{}, fmt.Errorf("waiting for job %s: %w", id, ctx.Err())
		case !transient(err):
			return Job{}, err
		}
		select {
		case <-ctx.Done():
			return Job{}, fmt.Errorf("waiting for job %s: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// transient reports whether waiting may get past err: anything but an error response,
// unless the server (or a gateway before it) said it is unavailable.
func transient(err error) bool {
	var re *ResponseError
	return !errors.As(err, &re) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTooManyRequests)
}

// idleReader pushes back timer on every read that returns data.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(streamIdleTimeout)
	}
	return n, err
}
