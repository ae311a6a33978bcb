//go:build race

package scheduler

// raceEnabled shrinks the randomised tests: the race detector makes the
// full scans they compare against about ten times slower.
const raceEnabled = true
