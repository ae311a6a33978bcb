package hw

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

type cpuInfo struct {
	Model         string
	LogicalCPUs   int
	PhysicalCores int // 0 when cpuinfo has no core ids (arm64)
	Sockets       int // 0 when cpuinfo has no physical ids (arm64)
}

// parseCPUInfo reads /proc/cpuinfo. x86 names the model in "model name";
// arm64 does not, so the model comes from "CPU implementer" and "CPU part".
// Lines it does not know are ignored; a known field that is not a number is
// an error naming source, line and field.
func parseCPUInfo(source string, data []byte) (cpuInfo, error) {
	var info cpuInfo
	var fallbackModel, implementer, part string
	type core struct{ socket, id int }
	cores := map[core]bool{}
	sockets := map[int]bool{}
	cur, idsComplete := core{-1, -1}, true
	endProcessor := func() {
		if info.LogicalCPUs == 0 {
			return
		}
		if cur.socket < 0 || cur.id < 0 {
			idsComplete = false
		}
		cores[cur] = true
	}
	lineNo := 0
	for line := range strings.Lines(string(data)) {
		lineNo++
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, val := strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		number := func() (int, error) {
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%w: %s line %d: field %s: %q is not a number", ErrMalformed, source, lineNo, key, val)
			}
			return n, nil
		}
		switch key {
		case "processor":
			if _, err := number(); err != nil {
				return cpuInfo{}, err
			}
			endProcessor()
			info.LogicalCPUs++
			cur = core{-1, -1}
		case "physical id":
			n, err := number()
			if err != nil {
				return cpuInfo{}, err
			}
			cur.socket, sockets[n] = n, true
		case "core id":
			n, err := number()
			if err != nil {
				return cpuInfo{}, err
			}
			cur.id = n
		case "model name":
			if info.Model == "" {
				info.Model = val
			}
		case "cpu", "Processor", "uarch": // ppc64, old arm, riscv
			if fallbackModel == "" {
				fallbackModel = val
			}
		case "CPU implementer":
			implementer = strings.ToLower(val)
		case "CPU part":
			part = strings.ToLower(val)
		}
	}
	endProcessor()
	if idsComplete && info.LogicalCPUs > 0 {
		info.PhysicalCores, info.Sockets = len(cores), len(sockets)
	}
	switch {
	case info.Model != "":
	case implementer != "":
		info.Model = armModel(implementer, part)
	default:
		info.Model = fallbackModel
	}
	return info, nil
}

// armModel names an arm64 core from its MIDR fields, as /proc/cpuinfo prints
// them (the kernel's arch/arm64/include/asm/cputype.h lists the ids).
func armModel(implementer, part string) string {
	vendors := map[string]string{
		"0x41": "ARM", "0x42": "Broadcom", "0x43": "Cavium", "0x46": "Fujitsu", "0x48": "HiSilicon",
		"0x4e": "NVIDIA", "0x51": "Qualcomm", "0x61": "Apple", "0xc0": "Ampere",
	}
	parts := map[string]string{
		"0x41/0xd03": "Cortex-A53", "0x41/0xd07": "Cortex-A57", "0x41/0xd08": "Cortex-A72",
		"0x41/0xd0b": "Cortex-A76", "0x41/0xd0c": "Neoverse-N1", "0x41/0xd40": "Neoverse-V1",
		"0x41/0xd49": "Neoverse-N2", "0x41/0xd4f": "Neoverse-V2", "0x46/0x001": "A64FX",
		"0x48/0xd01": "Kunpeng-920", "0x4e/0x004": "Carmel", "0xc0/0xac3": "AmpereOne",
	}
	vendor, ok := vendors[implementer]
	if !ok {
		vendor = "implementer " + implementer
	}
	if name, ok := parts[implementer+"/"+part]; ok {
		return vendor + " " + name
	}
	if part == "" {
		return vendor
	}
	return vendor + " part " + part
}

// parseMemInfo reads /proc/meminfo ("Key: value kB" lines). MemTotal is
// required; MemAvailable (kernel ≥ 3.14) falls back to MemFree+Buffers+Cached.
func parseMemInfo(source string, data []byte) (Memory, error) {
	got := map[string]uint64{}
	lineNo := 0
	for line := range strings.Lines(string(data)) {
		lineNo++
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return Memory{}, fmt.Errorf("%w: %s line %d: %q has no ':'", ErrMalformed, source, lineNo, strings.TrimSpace(line))
		}
		key := strings.TrimSpace(k)
		switch key {
		case "MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached":
		default:
			continue
		}
		n, err := parseKB(v)
		if err != nil {
			return Memory{}, fmt.Errorf("%w: %s line %d: field %s: %v", ErrMalformed, source, lineNo, key, err)
		}
		got[key] = n
	}
	total, ok := got["MemTotal"]
	if !ok {
		return Memory{}, fmt.Errorf("%w: %s: no MemTotal line", ErrMalformed, source)
	}
	avail, ok := got["MemAvailable"]
	if !ok {
		avail = got["MemFree"] + got["Buffers"] + got["Cached"]
	}
	return Memory{TotalBytes: total, AvailableBytes: min(avail, total)}, nil
}

// parseKB parses "131899876 kB" (or a bare byte count) into bytes.
func parseKB(v string) (uint64, error) {
	f := strings.Fields(v)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
		return 0, fmt.Errorf("%q: want a number of kB", strings.TrimSpace(v))
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", f[0])
	}
	if len(f) == 2 {
		if n > math.MaxUint64/1024 {
			return 0, fmt.Errorf("%q kB overflows", f[0])
		}
		n *= 1024
	}
	return n, nil
}
