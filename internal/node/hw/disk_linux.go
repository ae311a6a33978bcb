//go:build linux

package hw

import (
	"fmt"
	"syscall"
)

// diskSpace reports the filesystem holding dir: free is what an unprivileged
// user may still write (f_bavail), not the root-reserved remainder.
func diskSpace(dir string) Disk {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Disk{Dir: dir, Unknown: fmt.Sprintf("statfs %s: %v", dir, err)}
	}
	bsize := uint64(st.Bsize)
	return Disk{Dir: dir, FreeBytes: st.Bavail * bsize, TotalBytes: st.Blocks * bsize}
}
