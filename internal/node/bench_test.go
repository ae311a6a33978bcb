package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/runtime/docker"
	"github.com/omnisync/omnisync/internal/runtime/jobio"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
)

// BenchmarkContainerJob runs the smallest container job (testdata/touch: print a line,
// copy a 1 KiB input to /outputs, exit) two ways, alternated in one loop so that both
// see the same machine at the same moments:
//
//   - direct: the docker runtime's Run called in process (create, start, wait, collect,
//     remove), the baseline;
//   - daemon: the job dispatched to a node Daemon over an in-process NATS server (wss),
//     timed from sending the dispatch to receiving the result message: the ack, the input
//     fetched through the blob service, the chain read of the job's consumer, the same
//     Run, the output packed and stored, a fake chain's commit (instant: no block is
//     waited for), and the result published.
//
// Each job has a fresh input, as each real job does, so its output is fresh too and the
// blob service stores it rather than finding it present. The splits come from the
// runtime's log writer and from entering and leaving RunContainer.
func BenchmarkContainerJob(b *testing.B) {
	rt := dockerRuntime(b, "bench-node")
	tag, imageID := scratchImage(b, rt, "touch")
	key := transporttest.Key(b)
	nodeID := string(keys.AddressOfKey(key))
	consumer := keys.AddressOfKey(transporttest.Key(b))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	net := transporttest.Start(b, key)
	results := make(chan protocol.Result, 1)
	if _, err := net.Admin.Subscribe(protocol.ResultSubject(nodeID), func(m *nats.Msg) {
		res, _ := protocol.Decode[protocol.Result](m.Data)
		results <- res
	}); err != nil {
		b.Fatal(err)
	}
	timed := timedContainer{Container: runtime.Docker(rt), runs: make(chan *jobTimes, 1)}
	d, err := New(Options{
		Key: key, RouterURL: net.Server.WebSocketURL(), RootCAs: net.Roots,
		Chain: &containerChain{consumer: consumer}, Runtime: runtime.Native{}, Containers: timed,
		Hardware: ledger.Hardware{GPUModel: "test", GPUs: 1, VRAMMiB: 1024, TFLOPSMilli: 1000}, PricePerHour: 1, Stake: 500,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })

	jobs := 0
	// newJob stores a fresh input the way the router does before it dispatches (untimed)
	// and grants the node what the router would.
	newJob := func() (jobID string, input []byte, in api.Input, revoke func()) {
		jobs++
		jobID = fmt.Sprintf("job-%016d", jobs)
		input = append(bytes.Repeat([]byte{'.'}, 1024-len(jobID)), jobID...)
		digest, err := transport.PutBlob(ctx, net.JS, protocol.BlobBucket, input)
		if err != nil {
			b.Fatal(err)
		}
		revokeRead := net.Grants.AllowRead(nodeID, digest)
		revokeWrite := net.Grants.AllowWrite(nodeID, jobID, 1<<20)
		return jobID, input, api.Input{Name: "in", Digest: digest, Size: int64(len(input))}, func() { revokeRead(); revokeWrite() }
	}
	direct := func() *jobTimes {
		jobID, input, _, revoke := newJob()
		defer revoke()
		t := &jobTimes{}
		t.mark(&t.entered)
		res, err := rt.Run(ctx, docker.Job{
			ID: jobID, Consumer: string(consumer), Image: docker.Image{Ref: tag, ID: imageID},
			Inputs: []jobio.File{{Path: "in", Data: input}}, Logs: t,
		})
		t.mark(&t.returned)
		if err != nil {
			b.Fatalf("direct run: %v", err)
		}
		if len(res.Outputs) != 1 || res.Outputs[0].Path != "out" || !bytes.Equal(res.Outputs[0].Data, input) {
			b.Fatalf("direct run left %+v, want out = its input", res.Outputs)
		}
		return t
	}
	// viaDaemon returns the moment the dispatch was sent, when the result arrived, the
	// container runtime's times, and the result.
	viaDaemon := func() (sent, done time.Time, t *jobTimes, res protocol.Result) {
		jobID, _, in, revoke := newJob()
		defer revoke()
		spec := api.JobSpec{
			Workload:  api.Workload{Kind: api.WorkloadContainer, Image: tag, ImageID: imageID},
			Inputs:    []api.Input{in},
			Resources: api.Resources{}, // no GPU: it still takes the node's one slot
		}
		sent = time.Now()
		msg, err := net.Admin.Request(protocol.DispatchSubject(nodeID), protocol.Encode(protocol.Dispatch{JobID: jobID, Router: "router", Spec: spec, TimeoutSeconds: 60}), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if ack, err := protocol.Decode[protocol.Ack](msg.Data); err != nil || !ack.Accepted {
			b.Fatalf("dispatch declined: %+v %v", ack, err)
		}
		select {
		case res = <-results:
		case <-ctx.Done():
			b.Fatal("no result before the benchmark's deadline")
		}
		done = time.Now()
		if res.JobID != jobID || res.Error != "" || res.ExitCode == nil || *res.ExitCode != 0 || res.CommitTx == "" {
			b.Fatalf("result %+v, want %s committed with exit 0", res, jobID)
		}
		return sent, done, <-timed.runs, res
	}

	// Warm both paths up (connections, page cache, the engine's image metadata) and check
	// once that the stored archive is what the job left.
	direct()
	_, _, _, res := viaDaemon()
	archive, err := transport.GetBlob(ctx, net.JS, protocol.BlobBucket, res.Digest)
	if err != nil {
		b.Fatal(err)
	}
	out, err := api.UnpackOutput(archive, 16, 1<<20)
	if err != nil || out.ExitCode != 0 || len(out.Files) != 1 || out.Files[0].Path != "out" || len(out.Files[0].Data) != 1024 {
		b.Fatalf("stored output %+v, %v: want exit 0 and out, 1 KiB", out, err)
	}

	var sum struct {
		direct, directFirstLog           time.Duration
		daemon, daemonFirstLog           time.Duration
		beforeRuntime, runtime, afterRun time.Duration
	}
	n := 0
	for b.Loop() {
		runDirect := func() {
			t := direct()
			sum.direct += t.returned.Sub(t.entered)
			sum.directFirstLog += t.firstByte.Sub(t.entered)
		}
		runDaemon := func() {
			sent, done, t, _ := viaDaemon()
			sum.daemon += done.Sub(sent)
			sum.daemonFirstLog += t.firstByte.Sub(sent)
			sum.beforeRuntime += t.entered.Sub(sent)
			sum.runtime += t.returned.Sub(t.entered)
			sum.afterRun += done.Sub(t.returned)
		}
		if n%2 == 0 { // alternate the order, so neither always follows the other
			runDirect()
			runDaemon()
		} else {
			runDaemon()
			runDirect()
		}
		n++
	}

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	b.ReportMetric(ms(sum.direct), "direct-ms/op")
	b.ReportMetric(ms(sum.daemon), "daemon-ms/op")
	b.ReportMetric(ms(sum.daemon-sum.direct), "overhead-ms/op")
	b.ReportMetric(float64(sum.daemon)/float64(sum.direct), "x-daemon/direct")
	b.ReportMetric(ms(sum.directFirstLog), "direct-first-log-ms/op")
	b.ReportMetric(ms(sum.daemonFirstLog-sum.directFirstLog), "start-overhead-ms/op")
	b.ReportMetric(ms(sum.beforeRuntime), "before-runtime-ms/op")
	b.ReportMetric(ms(sum.runtime), "in-runtime-ms/op")
	b.ReportMetric(ms(sum.afterRun), "after-runtime-ms/op")
}

// jobTimes are the moments of one container run: the runtime entered, the job's first
// log byte (the container is running), the runtime returned. It is the run's log writer.
type jobTimes struct {
	mu                           sync.Mutex
	entered, firstByte, returned time.Time
}

func (t *jobTimes) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstByte.IsZero() {
		t.firstByte = time.Now()
	}
	return len(p), nil
}

func (t *jobTimes) mark(at *time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*at = time.Now()
}

// timedContainer times each run of the container runtime it wraps and hands the times
// to the benchmark.
type timedContainer struct {
	runtime.Container
	runs chan *jobTimes
}

func (c timedContainer) RunContainer(ctx context.Context, task runtime.ContainerTask) (runtime.ContainerResult, error) {
	t := &jobTimes{}
	t.mark(&t.entered)
	task.Logs = t
	res, err := c.Container.RunContainer(ctx, task)
	t.mark(&t.returned)
	select {
	case c.runs <- t:
	default: // nobody is reading: drop it rather than hold the job
	}
	return res, err
}

// containerChain is fakeChain that also answers the daemon's read of a job's consumer,
// which it makes before it runs a container job.
type containerChain struct {
	fakeChain
	consumer keys.Address
}

func (c *containerChain) Query(ctx context.Context, path string, v any) error {
	if id, ok := strings.CutPrefix(path, "job/"); ok {
		b, _ := json.Marshal(ledger.Job{ID: id, Consumer: c.consumer})
		return json.Unmarshal(b, v)
	}
	return c.fakeChain.Query(ctx, path, v)
}
