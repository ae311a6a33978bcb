package router

import (
	"testing"
	"time"
)

func TestHeartbeatPaceGrowsWithLoadUpToATTLThird(t *testing.T) {
	for _, c := range []struct {
		name   string
		online int
		rate   int
		ttl    time.Duration
		want   time.Duration
	}{
		{"a few nodes heartbeat at the floor", 3, 10_000, 10 * time.Second, time.Second},
		{"the rate is met", 25_000, 10_000, 30 * time.Second, 2500 * time.Millisecond},
		{"rounded up to a step", 26_000, 10_000, 30 * time.Second, 3 * time.Second},
		{"100k nodes at 10k/s", 100_000, 10_000, 30 * time.Second, 10 * time.Second},
		{"capped at a third of the TTL", 100_000, 10_000, 10 * time.Second, 10 * time.Second / 3},
		{"a zero rate is taken as 1/s", 2, 0, time.Minute, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := heartbeatPace(c.online, c.rate, c.ttl)
			if got != c.want {
				t.Fatalf("heartbeatPace(%d, %d, %s) = %s, want %s", c.online, c.rate, c.ttl, got, c.want)
			}
			if got > c.ttl/3 {
				t.Fatalf("pace %s lets a node that misses two heartbeats expire (ttl %s)", got, c.ttl)
			}
		})
	}
}
