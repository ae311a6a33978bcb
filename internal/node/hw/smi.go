package hw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// queryFields are what the nvidia-smi fallback asks for, in order. NVIDIA
// documents each in `nvidia-smi --help-query-gpu`; the memory bus width and
// core count have no query field, so they stay unknown on this path.
var queryFields = []string{
	"index", "name", "uuid", "memory.total", "memory.free", "compute_cap",
	"clocks.sm", "clocks.max.sm", "clocks.mem", "clocks.max.mem",
	"power.draw", "power.limit", "temperature.gpu", "utilization.gpu", "utilization.memory",
	"pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current", "pcie.link.width.max",
	"mig.mode.current", "ecc.mode.current", "driver_version",
}

// discoverGPUs tries NVML, then nvidia-smi. Neither being there is not an
// error: the Report becomes a CPU node's and says why.
func discoverGPUs(ctx context.Context, opts Options, r *Report) error {
	nvmlWhy := "NVML disabled"
	if !opts.DisableNVML {
		err := readNVML(opts.openNVML, r)
		if err == nil && len(r.GPUs) > 0 {
			r.GPUSource = "nvml"
			return nil
		}
		nvmlWhy = "NVML found no GPU"
		if err != nil {
			nvmlWhy = err.Error()
		}
	}
	smiWhy, err := readSMI(ctx, opts.Run, r)
	if err != nil || len(r.GPUs) > 0 {
		return err
	}
	r.GPUSource = ""
	r.NoGPUReason = nvmlWhy + ", " + smiWhy
	if smiWhy == smiNotFound {
		r.NoGPUReason = "no NVIDIA driver: " + r.NoGPUReason
	}
	return nil
}

const smiNotFound = "nvidia-smi not on PATH"

// readSMI runs nvidia-smi and parses what it prints. why says, when no GPU
// was read, what nvidia-smi did instead; err is for output it could not parse.
func readSMI(ctx context.Context, run RunFunc, r *Report) (why string, err error) {
	qctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := run(qctx, "nvidia-smi", "--query-gpu="+strings.Join(queryFields, ","), "--format=csv,noheader,nounits")
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return smiNotFound, nil
	case err != nil:
		return fmt.Sprintf("nvidia-smi failed: %v", err), nil
	}
	gpus, driver, err := parseQueryGPU(out, queryFields)
	if err != nil {
		return "", err
	}
	if len(gpus) == 0 {
		return "nvidia-smi listed no GPU", nil
	}
	r.GPUs, r.GPUSource, r.DriverVersion = gpus, "nvidia-smi", driver

	// The CUDA version has no query field; `nvidia-smi -q` prints it in its header.
	out, err = run(qctx, "nvidia-smi", "-q")
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("CUDA version unknown: nvidia-smi -q: %v", err))
		return "", nil
	}
	r.CUDAVersion = parseSMIHeader(out, "CUDA Version")
	return "", nil
}

// parseQueryGPU parses `nvidia-smi --query-gpu=<fields> --format=csv[,noheader][,nounits]`.
// A header line, if present, names the columns instead of fields. Values
// NVIDIA prints for missing data ("[N/A]", "N/A", "[Not Supported]", any
// "[…]") are unknown, not errors. Unrecognised columns are ignored. It returns
// the GPUs in order and the driver version, if a column gave one.
func parseQueryGPU(out []byte, fields []string) ([]GPU, string, error) {
	var gpus []GPU
	var driver string
	cols := fields
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for line := 0; sc.Scan(); {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		values := strings.Split(text, ",")
		for i := range values {
			values[i] = strings.TrimSpace(values[i])
		}
		if gpus == nil && isQueryHeader(values) {
			cols = make([]string, len(values))
			for i, v := range values {
				cols[i], _, _ = strings.Cut(v, " [") // "memory.total [MiB]"
			}
			continue
		}
		if len(values) != len(cols) {
			return nil, "", fmt.Errorf("%w: nvidia-smi line %d: %d values for %d fields (%s)", ErrMalformed, line, len(values), len(cols), strings.Join(cols, ","))
		}
		g := GPU{Index: len(gpus)}
		for i, col := range cols {
			v, known := smiValue(values[i])
			if !known {
				continue
			}
			if col == "driver_version" {
				driver = v
				continue
			}
			if err := setSMIField(&g, col, v); err != nil {
				return nil, "", fmt.Errorf("%w: nvidia-smi line %d: field %s: %v", ErrMalformed, line, col, err)
			}
		}
		gpus = append(gpus, g)
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("%w: nvidia-smi: %v", ErrMalformed, err)
	}
	return gpus, driver, nil
}

// isQueryHeader reports whether a CSV record is nvidia-smi's header, whose
// columns are the query's field names.
func isQueryHeader(values []string) bool {
	for _, v := range values {
		if v == "name" || v == "index" || v == "uuid" || strings.HasPrefix(v, "memory.total") {
			return true
		}
	}
	return false
}

// smiValue strips a value of nvidia-smi's unit and reports false for its
// markers of missing data.
func smiValue(v string) (string, bool) {
	if v == "" || v == "N/A" || strings.HasPrefix(v, "[") {
		return "", false
	}
	for _, unit := range []string{" MiB", " MHz", " W", " %", " C"} {
		if n, ok := strings.CutSuffix(v, unit); ok {
			return n, true
		}
	}
	return v, true
}

func setSMIField(g *GPU, col, v string) error {
	var err error
	switch col {
	case "index":
		g.Index, err = strconv.Atoi(v)
	case "name":
		g.Name = v
	case "uuid":
		g.UUID = v
	case "memory.total":
		g.MemoryTotalMiB, err = strconv.ParseUint(v, 10, 64)
	case "memory.free":
		g.MemoryFreeMiB, err = strconv.ParseUint(v, 10, 64)
	case "compute_cap":
		g.ComputeCapability, err = parseComputeCap(v)
	case "clocks.sm", "clocks.current.sm":
		g.SMClockMHz, err = parseUint32(v)
	case "clocks.max.sm", "clocks.max.sm_clock":
		g.SMClockMaxMHz, err = parseUint32(v)
	case "clocks.mem", "clocks.current.memory":
		g.MemClockMHz, err = parseUint32(v)
	case "clocks.max.mem", "clocks.max.memory":
		g.MemClockMaxMHz, err = parseUint32(v)
	case "power.draw":
		g.PowerDrawW, err = parseWatts(v)
	case "power.limit":
		g.PowerLimitW, err = parseWatts(v)
	case "temperature.gpu":
		g.TemperatureC, err = parseIntPtr(v)
	case "utilization.gpu":
		g.UtilizationGPUPct, err = parseIntPtr(v)
	case "utilization.memory":
		g.UtilizationMemPct, err = parseIntPtr(v)
	case "pcie.link.gen.current", "pcie.link.gen.gpucurrent":
		g.PCIeGen, err = strconv.Atoi(v)
	case "pcie.link.gen.max":
		g.PCIeGenMax, err = strconv.Atoi(v)
	case "pcie.link.width.current":
		g.PCIeWidth, err = strconv.Atoi(v)
	case "pcie.link.width.max":
		g.PCIeWidthMax, err = strconv.Atoi(v)
	case "mig.mode.current":
		g.MIGEnabled, err = parseEnabled(v)
	case "ecc.mode.current":
		g.ECCEnabled, err = parseEnabled(v)
	}
	if err != nil {
		return fmt.Errorf("%q: %v", v, reason(err))
	}
	return nil
}

// reason shortens strconv's errors to their cause ("invalid syntax").
func reason(err error) error {
	if ne, ok := errors.AsType[*strconv.NumError](err); ok {
		return ne.Err
	}
	return err
}

func parseUint32(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	return uint32(n), err
}

func parseWatts(v string) (float64, error) {
	w, err := strconv.ParseFloat(v, 64)
	if err == nil && !(w >= 0 && w <= 1e6) { // also rejects NaN
		return 0, errors.New("out of range")
	}
	return w, err
}

func parseIntPtr(v string) (*int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func parseEnabled(v string) (*bool, error) {
	switch v {
	case "Enabled":
		return ptr(true), nil
	case "Disabled":
		return ptr(false), nil
	}
	return nil, errors.New(`want "Enabled" or "Disabled"`)
}

func parseComputeCap(v string) (string, error) {
	major, minor, ok := strings.Cut(v, ".")
	if !ok {
		return "", errors.New("want MAJOR.MINOR")
	}
	if _, err := strconv.ParseUint(major, 10, 8); err != nil {
		return "", err
	}
	if _, err := strconv.ParseUint(minor, 10, 8); err != nil {
		return "", err
	}
	return v, nil
}

// parseSMIHeader returns the value of a "Key : value" line of `nvidia-smi -q`.
func parseSMIHeader(out []byte, key string) string {
	for line := range strings.Lines(string(out)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
