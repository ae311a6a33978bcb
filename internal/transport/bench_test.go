package transport

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkBlobGetWSS measures a 64 MiB GetBlob by a node over wss, with the
// browser user agent that Dial always sends and, as the baseline in the same
// run, without it.
func BenchmarkBlobGetWSS(b *testing.B) {
	const size = 64 << 20
	n := startTestNet(b, "n1")
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

	variants := []struct {
		name    string
		headers http.Header
		js      jetstream.JetStream
		elapsed time.Duration
	}{
		{name: "mozilla", headers: http.Header{"User-Agent": []string{browserUserAgent}}},
		{name: "plain", headers: nil},
	}
	for i := range variants {
		v := &variants[i]
		nc, err := dial(ctx, n.dialOptions("n1", func(err error) { b.Errorf("%s: async error: %v", v.name, err) }), v.headers)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		if v.js, err = jetstream.New(nc); err != nil {
			b.Fatal(err)
		}
		if _, err := GetBlob(ctx, v.js, testBucket, digest); err != nil { // warm up
			b.Fatalf("%s: %v", v.name, err)
		}
	}

	for b.Loop() {
		for i := range variants {
			v := &variants[i]
			start := time.Now()
			if _, err := GetBlob(ctx, v.js, testBucket, digest); err != nil {
				b.Fatalf("%s: %v", v.name, err)
			}
			v.elapsed += time.Since(start)
		}
	}

	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	moz, plain := mbps(variants[0].elapsed), mbps(variants[1].elapsed)
	b.ReportMetric(moz, "MB/s-mozilla")
	b.ReportMetric(plain, "MB/s-plain")
	b.ReportMetric(moz/plain, "x-mozilla/plain")
}
