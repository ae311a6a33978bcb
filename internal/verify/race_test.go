//go:build race

package verify

// raceEnabled skips the allocation counts: the race detector allocates on its own.
const raceEnabled = true
