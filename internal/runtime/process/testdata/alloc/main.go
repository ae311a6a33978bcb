// Command alloc maps and touches the number of MiB given as its argument, then reports
// whether it could: exit 0 if so, 3 if the kernel refused the mapping.
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	mib, _ := strconv.Atoi(os.Args[1])
	b, err := syscall.Mmap(-1, 0, mib<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Printf("alloc %d MiB failed: %v\n", mib, err)
		os.Exit(3)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	fmt.Printf("alloc %d MiB ok\n", mib)
}
