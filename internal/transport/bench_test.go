package transport

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// BenchmarkBlobGetWSS measures a 64 MiB read by a node over wss through the blob
// service (Blobs.Get), against, in the same run, the direct JetStream reads nodes made
// before the service existed (GetBlob on the node's own connection, with the bucket
// rights the node then had).
func BenchmarkBlobGetWSS(b *testing.B) {
	const size = 64 << 20
	n := startTestNet(b, "n1")
	stream := objectStream(testBucket)
	n.srv.auth.mu.Lock()
	n.srv.auth.extraPublish = []string{
		"$JS.API.STREAM.INFO." + stream, "$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream, "$JS.API.DIRECT.GET." + stream + ".>",
	}
	n.srv.auth.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	adminJS, err := jetstream.New(n.adminConn(b))
	if err != nil {
		b.Fatal(err)
	}
	digest, err := PutBlob(ctx, adminJS, testBucket, randomBytes(size, 64))
	if err != nil {
		b.Fatal(err)
	}
	n.access.AllowRead("n1", digest)
	nc := n.dialNode(b, "n1", func(err error) { b.Errorf("async error: %v", err) })
	nodeJS, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	blobs := n.blobs(nc, "n1")

	variants := []struct {
		name    string
		get     func() error
		elapsed time.Duration
	}{
		{name: "service", get: func() error { _, err := blobs.Get(ctx, digest); return err }},
		{name: "direct", get: func() error { _, err := GetBlob(ctx, nodeJS, testBucket, digest); return err }},
	}
	for _, v := range variants {
		if err := v.get(); err != nil { // warm up
			b.Fatalf("%s: %v", v.name, err)
		}
	}
	for b.Loop() {
		for i := range variants {
			start := time.Now()
			if err := variants[i].get(); err != nil {
				b.Fatalf("%s: %v", variants[i].name, err)
			}
			variants[i].elapsed += time.Since(start)
		}
	}

	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	service, direct := mbps(variants[0].elapsed), mbps(variants[1].elapsed)
	b.ReportMetric(service, "MB/s-service")
	b.ReportMetric(direct, "MB/s-direct")
	b.ReportMetric(service/direct, "x-service/direct")
}

// BenchmarkBlobPutWSS measures a 64 MiB upload by a node over wss through the blob
// service, which hashes every byte before it files them, against the router storing the
// same bytes in process (PutBlob), in the same run.
func BenchmarkBlobPutWSS(b *testing.B) {
	const size = 64 << 20
	n := startTestNet(b, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	adminJS, err := jetstream.New(n.adminConn(b))
	if err != nil {
		b.Fatal(err)
	}
	obs, err := adminJS.ObjectStore(ctx, testBucket)
	if err != nil {
		b.Fatal(err)
	}
	n.access.AllowWrite("n1", "job", size)
	blobs := n.blobs(n.dialNode(b, "n1", func(err error) { b.Errorf("async error: %v", err) }), "n1")
	var service, router time.Duration
	for i := 0; b.Loop(); i++ {
		data := randomBytes(size, uint64(i))
		name := Digest(data)[len(DigestPrefix):]
		start := time.Now()
		if _, err := blobs.Put(ctx, "job", data); err != nil {
			b.Fatal(err)
		}
		service += time.Since(start)
		if err := obs.Delete(ctx, name); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := PutBlob(ctx, adminJS, testBucket, data); err != nil {
			b.Fatal(err)
		}
		router += time.Since(start)
		if err := obs.Delete(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(service), "MB/s-node-wss")
	b.ReportMetric(mbps(router), "MB/s-router-inprocess")
	b.ReportMetric(mbps(service)/mbps(router), "x-node/router")
}

// processCPU is the CPU time this process has used, user and system: the server runs in
// it too, so a measure of both ends of the connection.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPutPublishes measures the CPU, client and server together, of a put's two
// publishes (a 4 KiB chunk, then metadata after its ack) as putChunk sends them
// (publish) against, in the same run, synchronous publishes (PublishMsg), with one put
// at a time and with several under way, each from a goroutine of its own as the router's
// and the blob service's puts are.
func BenchmarkPutPublishes(b *testing.B) {
	for _, putters := range []int{1, 8} {
		b.Run(fmt.Sprintf("putters=%d", putters), func(b *testing.B) {
			n := startTestNet(b)
			js := publisher(n.adminJS(b), batchTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // a job's puts have a deadline
			defer cancel()
			data, meta := randomBytes(4<<10, 1), randomBytes(300, 2)
			put := func(send func(m *nats.Msg) error) func() {
				return func() {
					id := nuid.Next()
					for _, m := range []*nats.Msg{{Subject: chunkSubject(testBucket, id), Data: data}, {Subject: metaSubject(testBucket, id), Data: meta}} {
						if err := send(m); err != nil {
							b.Error(err)
							return
						}
					}
				}
			}
			variants := []struct {
				name string
				put  func()
				cpu  time.Duration
			}{
				{name: "publish", put: put(func(m *nats.Msg) error { _, err := publish(ctx, js, m); return err })},
				{name: "sync", put: put(func(m *nats.Msg) error { _, err := js.PublishMsg(ctx, m); return err })},
			}
			for i := 0; b.Loop(); i++ {
				for k := range variants {
					v := &variants[(i+k)%len(variants)]
					start := processCPU()
					var wg sync.WaitGroup
					for range putters {
						wg.Go(v.put)
					}
					wg.Wait()
					v.cpu += processCPU() - start
				}
			}
			perPut := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*putters) }
			b.ReportMetric(perPut(variants[0].cpu), "cpu-ns/put-publish")
			b.ReportMetric(perPut(variants[1].cpu), "cpu-ns/put-sync")
			b.ReportMetric(variants[0].cpu.Seconds()/variants[1].cpu.Seconds(), "x-publish/sync")
		})
	}
}

// BenchmarkOwns is the check the blob service makes of every request: the reply subject
// lies in the requester's inbox.
func BenchmarkOwns(b *testing.B) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	prefix, err := InboxPrefix(pub)
	if err != nil {
		b.Fatal(err)
	}
	a := &authenticator{conns: map[uint64]participant{7: {id: "node-1", pub: pub, replies: prefix + "."}}, byID: map[string]map[uint64]bool{"node-1": {7: true}}}
	reply := prefix + ".abc.123"
	b.ReportAllocs()
	for b.Loop() {
		if !a.owns("node-1", reply) {
			b.Fatal("the requester's own inbox is not its own")
		}
	}
}
