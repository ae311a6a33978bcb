package hw

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCPUInfo(t *testing.T) {
	cases := []struct {
		file string
		want cpuInfo
	}{
		{"cpuinfo-x86-xeon-vm.txt", cpuInfo{Model: "Intel(R) Xeon(R) Processor", LogicalCPUs: 2, PhysicalCores: 2, Sockets: 1}},
		{"cpuinfo-x86-epyc.txt", cpuInfo{Model: "AMD EPYC 9654 96-Core Processor", LogicalCPUs: 4, PhysicalCores: 2, Sockets: 1}},
		// arm64 prints no model name and no core ids.
		{"cpuinfo-arm64-grace.txt", cpuInfo{Model: "ARM Neoverse-V2", LogicalCPUs: 4}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := parseCPUInfo(c.file, readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseCPUInfoOtherArchitectures(t *testing.T) {
	cases := []struct {
		name, in, wantModel string
	}{
		{"ppc64le", "processor\t: 0\ncpu\t\t: POWER9, altivec supported\nclock\t\t: 2166.000000MHz\n", "POWER9, altivec supported"},
		{"unknown arm part", "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xfff\n", "ARM part 0xfff"},
		{"unknown arm vendor", "processor\t: 0\nCPU implementer\t: 0x99\n", "implementer 0x99"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseCPUInfo("cpuinfo", []byte(c.in))
			if err != nil || got.Model != c.wantModel {
				t.Errorf("model %q, err %v; want %q", got.Model, err, c.wantModel)
			}
		})
	}
}

func TestParseCPUInfoErrorsNameFieldAndLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"processor\t: zero\n", `cpuinfo line 1: field processor: "zero" is not a number`},
		{"processor\t: 0\nphysical id\t: x\n", `cpuinfo line 2: field physical id: "x" is not a number`},
		{"processor\t: 0\ncore id\t: -3\n", `cpuinfo line 2: field core id: "-3" is not a number`},
	}
	for _, c := range cases {
		_, err := parseCPUInfo("cpuinfo", []byte(c.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}

func TestParseMemInfo(t *testing.T) {
	t.Run("this VM", func(t *testing.T) {
		m, err := parseMemInfo("meminfo", readFixture(t, "meminfo-vm.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if m.TotalBytes != 24684092*1024 || m.AvailableBytes != 24234968*1024 {
			t.Errorf("got %+v", m)
		}
	})
	t.Run("kernel without MemAvailable", func(t *testing.T) {
		m, err := parseMemInfo("meminfo", readFixture(t, "meminfo-old-kernel.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if m.TotalBytes != 2059980*1024 || m.AvailableBytes != (512004+65536+786432)*1024 {
			t.Errorf("got %+v", m)
		}
	})
}

func TestParseMemInfoErrorsNameFieldAndLine(t *testing.T) {
	cases := []struct{ in, want string }{
		{"MemTotal: lots kB\n", `meminfo line 1: field MemTotal: "lots" is not a number`},
		{"MemTotal: 100 kB\nMemAvailable: 5 MB\n", `meminfo line 2: field MemAvailable: "5 MB": want a number of kB`},
		{"MemTotal: 99999999999999999999 kB\n", `field MemTotal: "99999999999999999999" is not a number`},
		{"MemTotal: 18446744073709551 kB\n", `field MemTotal: "18446744073709551" kB overflows`},
		{"MemFree: 1 kB\n", "meminfo: no MemTotal line"},
		{"MemTotal: 1 kB\ngarbage\n", `meminfo line 2: "garbage" has no ':'`},
	}
	for _, c := range cases {
		_, err := parseMemInfo("meminfo", []byte(c.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}
