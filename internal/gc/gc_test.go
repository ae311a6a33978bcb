package gc

import (
	"runtime/debug"
	"testing"
)

// The binary's GC target applies unless the environment set one: GOGC wins, "off"
// included, and an unset GOGC gets Percent.
func TestTuneDefersToGOGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	if got := Tune(func(string) string { return "" }); got != Percent || debug.SetGCPercent(Percent) != Percent {
		t.Fatalf("GOGC unset: %d in effect, want %d", got, Percent)
	}
	for env, want := range map[string]int{"50": 50, "off": -1} {
		debug.SetGCPercent(want) // as the runtime applies GOGC at start
		if got := Tune(func(string) string { return env }); got != want || debug.SetGCPercent(want) != want {
			t.Fatalf("GOGC=%s: %d in effect, want %d", env, got, want)
		}
	}
}
