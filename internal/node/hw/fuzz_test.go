package hw

import (
	"os"
	"path/filepath"
	"testing"
)

// The parsers read what a host or a driver prints: they may reject it, never panic.

func addFixtures(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzParseQueryGPU(f *testing.F) {
	addFixtures(f, "*query-gpu.csv")
	f.Add([]byte("name, memory.total [MiB]\n[N/A], 12 MiB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		gpus, _, err := parseQueryGPU(data, queryFields)
		if err != nil && gpus != nil {
			t.Errorf("error %v with GPUs %+v", err, gpus)
		}
		r := Report{GPUs: gpus}
		for i := range r.GPUs {
			rateGPU(&r.GPUs[i], &r)
		}
		_ = r.Summary()
		_, _ = r.LedgerHardware()
	})
}

func FuzzParseCPUInfo(f *testing.F) {
	addFixtures(f, "cpuinfo-*")
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseCPUInfo("cpuinfo", data)
		if err == nil && (info.PhysicalCores > info.LogicalCPUs || info.Sockets > info.LogicalCPUs) {
			t.Errorf("more cores than CPUs: %+v", info)
		}
	})
}

func FuzzParseMemInfo(f *testing.F) {
	addFixtures(f, "meminfo-*")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMemInfo("meminfo", data)
		if err == nil && m.AvailableBytes > m.TotalBytes {
			t.Errorf("more available than total: %+v", m)
		}
	})
}
