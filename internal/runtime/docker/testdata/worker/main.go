// Command worker is a well-behaved job: it reads every file under /inputs, writes their
// names and bytes reversed to /outputs, logs to both streams, and exits with the code given
// as its first argument (0 when absent).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	fmt.Println("worker: starting")
	fmt.Fprintln(os.Stderr, "worker: a line on stderr")
	if err := filepath.WalkDir("/inputs", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		slices.Reverse(b)
		rel, _ := filepath.Rel("/inputs", p)
		dst := filepath.Join("/outputs", strings.ReplaceAll(rel, "/", "_")+".rev")
		return os.WriteFile(dst, b, 0o644)
	}); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll("/outputs/sub", 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	if err := os.WriteFile("/outputs/sub/env.txt", []byte(os.Getenv("GREETING")), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	code := 0
	if len(os.Args) > 1 {
		code, _ = strconv.Atoi(os.Args[1])
	}
	fmt.Printf("worker: done, exiting %d\n", code)
	os.Exit(code)
}
