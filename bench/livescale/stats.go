package main

import (
	"math"
	"time"
)

// routerStats is what the router process reports every two seconds; the histogram is
// cumulative since it started.
type routerStats struct {
	At        time.Time
	Online    int
	CPU       time.Duration // user + system since start
	RSS, HWM  uint64        // VmRSS, VmHWM
	HeapInuse uint64
	Sys       uint64
	Count     uint64 // heartbeats indexed
	Buckets   []bucket
}

type bucket struct {
	Le    float64
	Count uint64 // cumulative
}

// since is s's histogram less what earlier had counted.
func (s routerStats) since(earlier routerStats) routerStats {
	out := s
	out.Count -= earlier.Count
	out.Buckets = make([]bucket, len(s.Buckets))
	for i, b := range s.Buckets {
		out.Buckets[i] = b
		if i < len(earlier.Buckets) {
			out.Buckets[i].Count -= earlier.Buckets[i].Count
		}
	}
	return out
}

func (s routerStats) rateSince(earlier routerStats) uint64 {
	secs := s.At.Sub(earlier.At).Seconds()
	if earlier.At.IsZero() || secs <= 0 {
		return 0
	}
	return uint64(float64(s.Count-earlier.Count) / secs)
}

func (s routerStats) cpuSince(earlier routerStats) float64 {
	if earlier.At.IsZero() {
		return 0
	}
	return (s.CPU - earlier.CPU).Seconds() / s.At.Sub(earlier.At).Seconds()
}

// quantile interpolates within the histogram's buckets, as Prometheus's
// histogram_quantile does.
func (s routerStats) quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	lower, below := 0.0, uint64(0)
	for _, b := range s.Buckets {
		if float64(b.Count) >= rank {
			frac := (rank - float64(below)) / math.Max(float64(b.Count-below), 1)
			return time.Duration((lower + (b.Le-lower)*frac) * float64(time.Second))
		}
		lower, below = b.Le, b.Count
	}
	return time.Duration(lower * float64(time.Second)) // beyond the last bucket: at least this
}

// top is the upper bound of the highest bucket anything fell in ("beyond the last").
func (s routerStats) top() string {
	top, below := "0s", uint64(0)
	for _, b := range s.Buckets {
		if b.Count > below {
			top = time.Duration(b.Le * float64(time.Second)).String()
		}
		below = b.Count
	}
	if s.Count > below {
		return "beyond the last"
	}
	return top
}
