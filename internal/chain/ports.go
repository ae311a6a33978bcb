package chain

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// listenFree listens on a free port of host, for a caller that closes the listener and
// hands its address to CometBFT, which binds its own addresses later. A port the kernel
// picks for port 0 comes from its range of ephemeral ports, which every outgoing
// connection on the machine draws its local port from too: one may take the port between
// its close and CometBFT's bind, and a devnet started during a loaded test run failed with
// "address already in use". So the ports below that range are tried first, each checked
// by listening on it, and port 0 is the fallback.
func listenFree(host string) (net.Listener, error) {
	if lo := ephemeralLow(); lo > minPickedPort {
		for range 64 {
			port := minPickedPort + rand.IntN(lo-minPickedPort)
			if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
				return l, nil
			}
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	return l, nil
}

// minPickedPort is the lowest port listenFree picks: above the ports services commonly
// claim.
const minPickedPort = 20000

// ephemeralLow is the first port of the kernel's range of ephemeral ports, or 0 when it
// cannot tell.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}
