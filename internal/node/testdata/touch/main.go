// Command touch is the smallest container job: it says it started, copies /inputs/in to
// /outputs/out and exits 0. The node's benchmarks time a job that does nothing else.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("touch: started")
	b, err := os.ReadFile("/inputs/in")
	if err == nil {
		err = os.WriteFile("/outputs/out", b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "touch:", err)
		os.Exit(1)
	}
}
