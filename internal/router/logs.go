package router

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/protocol"
)

// maxJobLog is how much of each node's log of a job the router keeps: the latest bytes.
const maxJobLog = 1 << 20

// jobLog is the log one node streamed for a job, as the router keeps it: the last
// maxJobLog bytes of it, at their positions in the whole (which a lost chunk shortens).
type jobLog struct {
	data     []byte
	start    int64 // position of data[0]
	nodeNext int64 // the node's offset the next chunk should start at
	eof      bool
}

func (l *jobLog) add(c protocol.LogChunk) {
	data := c.Data
	switch {
	case c.Offset < l.nodeNext: // overlaps what came already
		skip := min(l.nodeNext-c.Offset, int64(len(data)))
		data = data[skip:]
	case c.Offset > l.nodeNext:
		data = append([]byte(fmt.Sprintf("\n[omnisync: %d bytes of log lost on the way]\n", c.Offset-l.nodeNext)), data...)
	}
	l.nodeNext = max(l.nodeNext, c.Offset+int64(len(c.Data)))
	l.data = append(l.data, data...)
	if over := len(l.data) - maxJobLog; over > 0 {
		l.data = append([]byte(nil), l.data[over:]...)
		l.start += int64(over)
	}
	l.eof = l.eof || c.EOF
}

// onLog keeps a chunk of a job's log from a node that runs an attempt of it.
func (r *Router) onLog(m *nats.Msg) {
	c, err := protocol.Decode[protocol.LogChunk](m.Data)
	j := r.jobOfReport(m.Subject, "log chunk", c.JobID, c.NodeID, err)
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, running := j.inbox[c.NodeID]; !running {
		return // not a node this router awaits for the job: nobody else writes its logs
	}
	if j.logs == nil {
		j.logs = map[string]*jobLog{}
	}
	l := j.logs[c.NodeID]
	if l == nil {
		l = &jobLog{}
		j.logs[c.NodeID] = l
	}
	l.add(c)
}

// JobLogs returns what node (the job's node, or its first replica with logs, when "") has
// logged of the job from position from on, to its consumer, whose signed output request
// proves it asked. Logs are kept in memory by the router running the job.
func (r *Router) JobLogs(ctx context.Context, jobID string, auth api.OutputAuth, node string, from int64) (api.JobLogs, error) {
	if err := r.checkSigned(auth, func(pub ed25519.PublicKey) error {
		return api.VerifyOutputAuth(pub, jobID, auth, r.opts.Now(), api.MaxOutputAuthTTL)
	}); err != nil {
		return api.JobLogs{}, err
	}
	v, err := r.Job(ctx, jobID)
	if err != nil {
		return api.JobLogs{}, err
	}
	if v.Consumer != auth.Address {
		return api.JobLogs{}, fmt.Errorf("%w: only the consumer of job %s may read its logs", api.ErrForbidden, jobID)
	}
	r.mu.Lock()
	j := r.jobs[jobID]
	r.mu.Unlock()
	out := api.JobLogs{JobID: jobID, Node: node, From: from, Next: from, Final: api.Final(v.Status)}
	if j == nil {
		if owner := r.storedJob(ctx, jobID); owner != nil && owner.owner != r.id {
			return api.JobLogs{}, fmt.Errorf("%w: job %s's logs are kept by router %s, which runs it: ask its REST API", api.ErrNotFound, jobID, owner.owner.Short())
		}
		return out, nil // finished and forgotten, or never logged
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for n := range j.logs {
		out.Nodes = append(out.Nodes, n)
	}
	slices.Sort(out.Nodes)
	if out.Node == "" {
		switch {
		case j.logs[j.node] != nil:
			out.Node = j.node
		case len(out.Nodes) > 0:
			out.Node = out.Nodes[0]
		}
	}
	l := j.logs[out.Node]
	if l == nil {
		return out, nil
	}
	end := l.start + int64(len(l.data))
	if from < l.start {
		out.Truncated, from = true, l.start
	}
	if from > end {
		return api.JobLogs{}, &api.FieldError{Field: "from", Msg: "beyond the end of the log (" + strconv.FormatInt(end, 10) + ")"}
	}
	out.From, out.Next, out.EOF = from, end, l.eof
	out.Data = append([]byte(nil), l.data[from-l.start:]...)
	return out, nil
}
