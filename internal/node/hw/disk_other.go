//go:build !linux

package hw

import "runtime"

// diskSpace is only implemented on linux, where suppliers run nodes.
func diskSpace(dir string) Disk {
	return Disk{Dir: dir, Unknown: "unknown: free disk is only read on linux, not " + runtime.GOOS}
}
