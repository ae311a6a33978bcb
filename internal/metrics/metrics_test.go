package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeScrapesTheRegistryItIsGiven(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "omnisync_test_things_total", Help: "Things."})
	if err := Register(reg, c); err != nil {
		t.Fatal(err)
	}
	c.Add(3)
	if err := Register(reg, c); err == nil {
		t.Error("registering the same series twice succeeded")
	}
	if err := Register(nil, c); err != nil {
		t.Errorf("a nil registerer should take anything: %v", err)
	}
	addr, stop, err := Serve("127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"omnisync_test_things_total 3", "go_goroutines", "process_"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if _, _, err := Serve(addr, reg, nil); err == nil {
		t.Error("serving on a busy port succeeded")
	}
}
