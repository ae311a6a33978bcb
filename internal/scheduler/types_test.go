package scheduler

import (
	"errors"
	"testing"
)

func TestWeightsValidate(t *testing.T) {
	tests := []struct {
		name string
		w    Weights
		ok   bool
	}{
		{"default", DefaultWeights(), true},
		{"all compute", Weights{Compute: 10000}, true},
		{"short", Weights{3500, 3000, 2000, 1000}, false},
		{"over", Weights{3500, 3000, 2000, 2000}, false},
		{"would wrap uint32", Weights{1<<32 - 1, 10001, 0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.w.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidWeights)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	d := DefaultWeights()
	if d.Compute != 3500 || d.Latency != 3000 || d.Reliability != 2000 || d.Price != 1500 {
		t.Fatalf("DefaultWeights() = %+v", d)
	}
}

func TestJobValidate(t *testing.T) {
	valid := Job{GPUs: 1, Replicas: 1, MaxPricePerHourUomni: 1}
	tests := []struct {
		name   string
		mutate func(*Job)
		ok     bool
	}{
		{"minimal", func(*Job) {}, true},
		{"zero gpus", func(j *Job) { j.GPUs = 0 }, false},
		{"zero replicas", func(j *Job) { j.Replicas = 0 }, false},
		{"too many replicas", func(j *Job) { j.Replicas = MaxReplicas + 1 }, false},
		{"no price ceiling", func(j *Job) { j.MaxPricePerHourUomni = 0 }, false},
		{"origin out of range", func(j *Job) { j.Origin = Location{LatE6: 91_000_000, LonE6: 1} }, false},
		{"origin at the pole", func(j *Job) { j.Origin = Location{LatE6: 90_000_000, LonE6: 180_000_000} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := valid
			tt.mutate(&j)
			err := j.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidJob)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestEstimateLatencyMicros(t *testing.T) {
	newYork := Location{LatE6: 40_712_800, LonE6: -74_006_000}
	london := Location{LatE6: 51_507_400, LonE6: -127_800}
	tests := []struct {
		name     string
		a, b     Location
		min, max uint32
	}{
		// 5,570 km: 5570/204×2.1 ms = 57.3 ms, plus 5 ms last mile.
		{"new york to london", newYork, london, 62_200, 62_500},
		{"same place is last mile only", london, london, LastMileMicros, LastMileMicros},
		// Half the circumference, 20,015 km: 206.0 ms + 5 ms.
		{"antipodes", Location{LatE6: 10_000_000, LonE6: 1}, Location{LatE6: -10_000_000, LonE6: -179_999_999}, 211_000, 211_100},
		{"unknown origin", Location{}, london, 0, 0},
		{"out of range", Location{LatE6: 100_000_000}, london, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EstimateLatencyMicros(tt.a, tt.b)
			if got < tt.min || got > tt.max {
				t.Fatalf("EstimateLatencyMicros = %d µs, want %d..%d", got, tt.min, tt.max)
			}
			if back := EstimateLatencyMicros(tt.b, tt.a); back != got {
				t.Fatalf("not symmetric: %d and %d", got, back)
			}
		})
	}
}

func TestShare(t *testing.T) {
	tests := []struct {
		num, den uint64
		want     uint32
	}{
		{0, 10, 0},
		{10, 10, 10000},
		{1, 3, 3333},
		{5, 0, 0},
		{1<<64 - 1, 1<<64 - 1, 10000},
		{1 << 63, 1<<64 - 1, 5000},
		{20, 10, 10000},
	}
	for _, tt := range tests {
		if got := share(tt.num, tt.den); got != tt.want {
			t.Errorf("share(%d, %d) = %d, want %d", tt.num, tt.den, got, tt.want)
		}
	}
}
