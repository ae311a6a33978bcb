// Command sleeper prints one line and sleeps far longer than any test waits.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("sleeping")
	time.Sleep(time.Hour)
}
