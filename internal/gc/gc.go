// Package gc sets the garbage collector's target for the omnisync binary, and for the
// benchmarks that measure the daemons as the binary runs them. It imports nothing of
// ours, so any package's tests may use it.
package gc

import (
	"runtime/debug"
	"strconv"
	"strings"
)

// Percent is the garbage collector's target, GOGC, that the omnisync binary runs with
// unless the environment sets GOGC: 200 where Go's default is 100. A devnet settling
// hundreds of jobs a second spent about a tenth of its CPU collecting garbage at 100;
// at 200 a collection comes after the heap has grown by twice what was live, rather than
// once, for about half as many collections. The price is memory: the heap may peak at
// three times what is live, not two.
const Percent = 200

// Tune sets GOGC to Percent unless getenv("GOGC") names a value of its own, which it
// sets as the Go runtime reads it ("off" is off, a value it cannot read is 100), and
// returns the percent in effect, -1 for off. It reads the value rather than keeping the
// one in effect, which the caller may have changed since the process started.
func Tune(getenv func(string) string) int {
	p := Percent
	if v := strings.TrimSpace(getenv("GOGC")); v != "" {
		p = 100
		if v == "off" {
			p = -1
		} else if n, err := strconv.Atoi(v); err == nil {
			p = max(n, -1)
		}
	}
	debug.SetGCPercent(p)
	return p
}
