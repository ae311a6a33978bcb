package gc

import (
	"runtime/debug"
	"testing"
)

// The binary's GC target applies unless the environment set one: GOGC wins, "off"
// included, and an unset GOGC gets Percent. The value is read from the environment, not
// taken from the setting in effect: a benchmark that turned the collector off to save the
// setting before Tune (as BenchmarkJobsInFlight does) ran with it off.
func TestTuneDefersToGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for env, want := range map[string]int{"": Percent, "50": 50, "400": 400, "off": -1, "-5": -1, "lots": 100} {
		debug.SetGCPercent(-1) // whatever is in effect before
		if got := Tune(func(string) string { return env }); got != want || debug.SetGCPercent(want) != want {
			t.Fatalf("GOGC=%q: %d in effect, want %d", env, got, want)
		}
	}
}
