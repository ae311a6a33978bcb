package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// apiVersion is the Engine API version the runtime speaks: 1.40 brought DeviceRequests and
// 1.41 CgroupnsMode, both of which it uses. An engine whose minimum is newer (Docker 29
// accepts 1.44 and up) is spoken to at its minimum: every field used here kept its meaning.
const apiVersion = "1.41"

// DefaultHost is the engine's socket when neither Options.Host nor DOCKER_HOST says otherwise.
const DefaultHost = "unix:///var/run/docker.sock"

// client is the slice of the Docker Engine API the runtime needs, over a unix socket with
// net/http; it keeps the project free of the Docker SDK's dependency tree.
type client struct {
	http    *http.Client
	host    string // as configured, for messages
	version string // e.g. "v1.41", prefixed to every path
}

// apiError is a non-2xx answer from the engine.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("docker engine: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// isNotFound reports a 404 from the engine (no such image or container).
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

func socketPath(host string) (string, error) {
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = DefaultHost
	}
	p, ok := strings.CutPrefix(host, "unix://")
	if !ok || p == "" {
		return "", fmt.Errorf("docker host %q: only unix:// sockets are supported", host)
	}
	return p, nil
}

// dial connects and agrees on an API version with the engine.
func dial(ctx context.Context, host string) (*client, error) {
	sock, err := socketPath(host)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns:    16,
		IdleConnTimeout: 30 * time.Second,
	}
	c := &client{http: &http.Client{Transport: tr}, host: "unix://" + sock}
	var v struct{ APIVersion, MinAPIVersion, Version string }
	if err := c.json(ctx, http.MethodGet, "/version", nil, nil, &v); err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrEngineUnreachable, c.host, err)
	}
	ver, err := chooseVersion(v.APIVersion, v.MinAPIVersion)
	if err != nil {
		return nil, fmt.Errorf("docker engine %s at %s: %w", v.Version, c.host, err)
	}
	c.version = "v" + ver
	return c, nil
}

// chooseVersion picks apiVersion, or the engine's minimum when that is newer.
func chooseVersion(engineMax, engineMin string) (string, error) {
	if engineMax == "" || versionLess(engineMax, apiVersion) {
		return "", fmt.Errorf("engine API %q is older than the %s this runtime needs", engineMax, apiVersion)
	}
	if engineMin != "" && versionLess(apiVersion, engineMin) {
		return engineMin, nil
	}
	return apiVersion, nil
}

// versionLess compares "major.minor" API versions.
func versionLess(a, b string) bool {
	parse := func(s string) (int, int) {
		ma, mi, _ := strings.Cut(s, ".")
		x, _ := strconv.Atoi(ma)
		y, _ := strconv.Atoi(mi)
		return x, y
	}
	a1, a2 := parse(a)
	b1, b2 := parse(b)
	return a1 < b1 || a1 == b1 && a2 < b2
}

// do sends one request; a non-2xx answer becomes an *apiError and the body is closed.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := "http://docker" + path
	if c.version != "" {
		u = "http://docker/" + c.version + path
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var m struct{ Message string }
		if json.Unmarshal(msg, &m) == nil && m.Message != "" {
			msg = []byte(m.Message)
		}
		return nil, &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}
	return resp, nil
}

// json sends in (if non-nil) as JSON and decodes the answer into out (if non-nil).
func (c *client) json(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, query, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return err
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out)
}

// jsonMessages reads the engine's progress stream (image load, build) to its end and
// returns the first error it reports, and the "stream" lines.
func jsonMessages(r io.Reader) (lines []string, err error) {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream string
			Error  string
		}
		if err := dec.Decode(&m); err == io.EOF {
			return lines, nil
		} else if err != nil {
			return lines, fmt.Errorf("docker engine progress stream: %w", err)
		}
		if m.Error != "" {
			return lines, errors.New(m.Error)
		}
		if s := strings.TrimSpace(m.Stream); s != "" {
			lines = append(lines, s)
		}
	}
}

// imageInfo is what the runtime reads from GET /images/{name}/json.
type imageInfo struct {
	ID       string `json:"Id"`
	RepoTags []string
	Config   struct {
		Volumes map[string]struct{}
	}
}

func (c *client) inspectImage(ctx context.Context, ref string) (imageInfo, error) {
	var info imageInfo
	err := c.json(ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, &info)
	return info, err
}

func (c *client) loadImage(ctx context.Context, tarball io.Reader) ([]string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/images/load", url.Values{"quiet": {"1"}}, tarball, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return jsonMessages(io.LimitReader(resp.Body, 1<<20))
}

func (c *client) createContainer(ctx context.Context, spec containerSpec) (string, error) {
	var out struct {
		ID       string `json:"Id"`
		Warnings []string
	}
	if err := c.json(ctx, http.MethodPost, "/containers/create", nil, spec, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

func (c *client) startContainer(ctx context.Context, id string) error {
	return c.json(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil, nil, nil)
}

// waitContainer registers a wait for the container's next exit and returns once the engine
// has accepted it, so that a start that follows cannot race past it. The returned function
// blocks until the exit and gives the exit code.
func (c *client) waitContainer(ctx context.Context, id string) (func() (int, error), error) {
	resp, err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/wait", url.Values{"condition": {"next-exit"}}, nil, "")
	if err != nil {
		return nil, err
	}
	return func() (int, error) {
		defer resp.Body.Close()
		var out struct {
			StatusCode int
			Error      *struct{ Message string }
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
			return 0, err
		}
		if out.Error != nil && out.Error.Message != "" {
			return out.StatusCode, errors.New(out.Error.Message)
		}
		return out.StatusCode, nil
	}, nil
}

func (c *client) killContainer(ctx context.Context, id string) error {
	return c.json(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/kill", nil, nil, nil)
}

// removeContainer force-removes a container and its anonymous volumes.
func (c *client) removeContainer(ctx context.Context, id string) error {
	err := c.json(ctx, http.MethodDelete, "/containers/"+url.PathEscape(id), url.Values{"force": {"1"}, "v": {"1"}}, nil, nil)
	if isNotFound(err) {
		return nil
	}
	return err
}

// containerState is what the runtime reads from GET /containers/{id}/json.
type containerState struct {
	ID    string `json:"Id"`
	State struct {
		Status    string
		Running   bool
		OOMKilled bool
		ExitCode  int
	}
	Config     struct{ Labels map[string]string }
	HostConfig json.RawMessage
}

func (c *client) inspectContainer(ctx context.Context, id string) (containerState, error) {
	var st containerState
	err := c.json(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, nil, &st)
	return st, err
}

// logs follows the container's multiplexed stdout and stderr until it stops.
func (c *client) logs(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/logs",
		url.Values{"follow": {"1"}, "stdout": {"1"}, "stderr": {"1"}}, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// containersLabelled lists every container, running or not, carrying label=value.
func (c *client) containersLabelled(ctx context.Context, label, value string) ([]string, error) {
	filters, err := json.Marshal(map[string][]string{"label": {label + "=" + value}})
	if err != nil {
		return nil, err
	}
	var list []struct {
		ID string `json:"Id"`
	}
	if err := c.json(ctx, http.MethodGet, "/containers/json", url.Values{"all": {"1"}, "filters": {string(filters)}}, nil, &list); err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.ID
	}
	return ids, nil
}

func (c *client) close() { c.http.CloseIdleConnections() }
