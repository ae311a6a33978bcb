package chain

import (
	"net"
	"testing"
)

// A port picked for CometBFT lies below the kernel's ephemeral range, from which every
// outgoing connection draws its local port, and is free when picked.
func TestListenFreeAvoidsTheEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	if lo <= minPickedPort {
		t.Skipf("the ephemeral range starts at %d: nothing below it to pick from", lo)
	}
	for range 20 {
		l, err := listenFree("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port < minPickedPort || port >= lo {
			t.Fatalf("picked port %d, want one in [%d, %d)", port, minPickedPort, lo)
		}
	}
}
