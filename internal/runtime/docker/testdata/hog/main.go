// Command hog allocates and touches memory until the kernel kills it.
package main

import (
	"fmt"
	"time"
)

func main() {
	var held [][]byte
	for i := 1; ; i++ {
		b := make([]byte, 4<<20)
		for j := range b {
			b[j] = byte(j)
		}
		held = append(held, b)
		if i%16 == 0 {
			fmt.Printf("holding %d MiB\n", len(held)*4)
		}
		if i > 4096 { // 16 GiB: never reached under the test's limit
			time.Sleep(time.Hour)
		}
	}
}
