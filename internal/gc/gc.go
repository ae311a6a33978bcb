// Package gc sets the garbage collector's target for the omnisync binary, and for the
// benchmarks that measure the daemons as the binary runs them. It imports nothing of
// ours, so any package's tests may use it.
package gc

import (
	"runtime/debug"
	"strings"
)

// Percent is the garbage collector's target, GOGC, that the omnisync binary runs with
// unless the environment sets GOGC: 200 where Go's default is 100. A devnet settling
// hundreds of jobs a second spent about a tenth of its CPU collecting garbage at 100;
// at 200 a collection comes after the heap has grown by twice what was live, rather than
// once, for about half as many collections. The price is memory: the heap may peak at
// three times what is live, not two.
const Percent = 200

// Tune sets GOGC to Percent unless getenv("GOGC") names a value of its own (which the
// Go runtime has applied already, "off" included), and returns the percent in effect, -1
// for off.
func Tune(getenv func(string) string) int {
	if v := strings.TrimSpace(getenv("GOGC")); v != "" {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(Percent)
	return Percent
}
