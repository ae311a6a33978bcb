// Command wordcount is the devnet demo's container job: a static program that the devnet
// builds into an image FROM scratch. It counts the lines, words and bytes of every file
// under /inputs and writes a summary to /outputs/summary.txt, the same bytes on every node
// that runs it, so that the replicas of a redundant job agree.
package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	var b strings.Builder
	words := map[string]int{}
	err := filepath.WalkDir("/inputs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines, n := 0, 0
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			lines++
			for _, w := range strings.Fields(sc.Text()) {
				n++
				words[strings.ToLower(strings.Trim(w, ".,;:!?\"'()"))]++
			}
		}
		fmt.Fprintf(&b, "%s: %d lines, %d words, %d bytes\n", strings.TrimPrefix(p, "/inputs/"), lines, n, len(data))
		fmt.Printf("counted %s\n", p)
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
	type count struct {
		word string
		n    int
	}
	var top []count
	for w, n := range words {
		if len(w) > 3 {
			top = append(top, count{w, n})
		}
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n || top[i].n == top[j].n && top[i].word < top[j].word })
	b.WriteString("most frequent words longer than three letters:\n")
	for _, c := range top[:min(5, len(top))] {
		fmt.Fprintf(&b, "  %-14s %d\n", c.word, c.n)
	}
	if err := os.WriteFile("/outputs/summary.txt", []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
	fmt.Println("wrote /outputs/summary.txt")
}
