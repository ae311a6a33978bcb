package hw

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/internal/ledger"
)

// Summary renders the Report as the whitepaper's one-line hardware line:
//
//	1× NVIDIA H200 (140 GiB, cc 9.0) · 989 TFLOPS bf16 · AMD EPYC 9654 96 cores · 1.5 TiB RAM · 3.2 TiB free
//
// and, for a host without a GPU,
//
//	CPU node · GPU: none found (no NVIDIA driver: …) · Intel Xeon 2 cores · 9.1 GOPS int8 measured · 24 GiB RAM · 80 GiB free
func (r Report) Summary() string {
	var parts []string
	if r.CPUNode() {
		parts = append(parts, "CPU node", "GPU: none found ("+r.NoGPUReason+")", r.cpuPart())
		if r.CPU.MeasuredGOPSInt8 > 0 {
			parts = append(parts, formatRate(r.CPU.MeasuredGOPSInt8)+" GOPS int8 measured")
		}
	} else {
		for _, group := range groupGPUs(r.GPUs) {
			g, n := group[0], len(group)
			desc := []string{formatBytes(g.MemoryTotalMiB << 20)}
			if g.ComputeCapability != "" {
				desc = append(desc, "cc "+g.ComputeCapability)
			}
			parts = append(parts, fmt.Sprintf("%d× %s (%s)", n, g.Name, strings.Join(desc, ", ")), gpuRate(g, n))
		}
		parts = append(parts, r.cpuPart())
	}
	ram, disk := "RAM unknown", "disk free unknown"
	if r.Memory.TotalBytes > 0 {
		ram = formatBytes(r.Memory.TotalBytes) + " RAM"
	}
	if r.Disk.Unknown == "" {
		disk = formatBytes(r.Disk.FreeBytes) + " free"
	}
	return strings.Join(append(parts, ram, disk), " · ")
}

// groupGPUs splits GPUs into runs of the same name, in index order.
func groupGPUs(gpus []GPU) [][]GPU {
	var groups [][]GPU
	for i, g := range gpus {
		if i > 0 && g.Name == gpus[i-1].Name {
			groups[len(groups)-1] = append(groups[len(groups)-1], g)
			continue
		}
		groups = append(groups, []GPU{g})
	}
	return groups
}

func gpuRate(g GPU, n int) string {
	if g.TFLOPS == 0 {
		return "TFLOPS unknown"
	}
	s := formatRate(g.TFLOPS) + " TFLOPS " + g.TFLOPSPrecision
	switch m := g.MeasuredTFLOPS; {
	case m > 0 && g.TFLOPS == m:
		s += " measured"
	case m > 0:
		s += " (" + formatRate(m) + " measured)"
	case g.Published == nil:
		s += " derived"
	}
	if n > 1 {
		s += " each"
	}
	return s
}

func (r Report) cpuPart() string {
	model := shortCPUName(r.CPU.Model)
	if model == "" {
		model = "unknown " + r.CPU.Arch + " CPU"
	}
	c := r.CPU
	switch {
	case c.PhysicalCores > 0 && c.PhysicalCores != c.LogicalCPUs:
		return fmt.Sprintf("%s %d cores (%d threads)", model, c.PhysicalCores, c.LogicalCPUs)
	case c.PhysicalCores > 0:
		return fmt.Sprintf("%s %d cores", model, c.PhysicalCores)
	default:
		return fmt.Sprintf("%s %d CPUs", model, c.LogicalCPUs)
	}
}

// shortCPUName drops marketing noise: "AMD EPYC 9654 96-Core Processor" →
// "AMD EPYC 9654", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz" → "Intel Xeon Gold 6338".
func shortCPUName(model string) string {
	model, _, _ = strings.Cut(model, " @ ")
	model = strings.NewReplacer("(R)", "", "(r)", "", "(TM)", "", "(tm)", "").Replace(model)
	words := strings.Fields(model)
	out := words[:0]
	for _, w := range words {
		if w == "Processor" || w == "CPU" || strings.HasSuffix(w, "-Core") {
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// formatBytes renders b in the largest binary unit that keeps it ≥ 1, with
// one decimal below 10: "140 GiB", "1.5 TiB".
func formatBytes(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(b), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v < 10 && u > 0 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[u]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " " + units[u]
}

// formatRate prints 989, 82.6, 8.1 or 0.42: three significant figures at most,
// never more than two decimals.
func formatRate(v float64) string {
	decimals := 0
	switch {
	case v < 1:
		decimals = 2
	case v < 100:
		decimals = 1
	}
	if math.Abs(v-math.Round(v)) < 0.05 && v >= 10 {
		decimals = 0
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// LedgerHardware maps the Report onto what MsgRegisterNode declares. Region and
// coordinates are not hardware: the caller sets them from configuration.
//
// A GPU node declares every GPU; per-GPU figures (the scheduler reads VRAMMiB
// and TFLOPSMilli as each GPU's) are the weakest GPU's, so a job placed on
// any of them fits. GPUModel is the table's model name ("H200") when every
// GPU is the same known model, the reported name when unknown, and
// "mixed: …" when they differ. TFLOPSMilli is the dense bf16/fp16 tensor
// rate from the table, or the derived fp32 rate for an unknown GPU.
//
// The ledger today accepts only nodes with gpus, vram_mib and tflops_milli
// all positive. A CPU node therefore declares one compute slot, honestly
// labelled: GPUModel "cpu: <model>", GPUs 1, VRAMMiB the host's available
// RAM, and TFLOPSMilli the measured int8 GOPS (int8 operations, not floating
// point; 1 GOPS = 1 milli-TOPS). It fails with ErrIncomplete if a figure is
// unknown rather than declare a zero the ledger would reject.
func (r Report) LedgerHardware() (ledger.Hardware, error) {
	if r.CPUNode() {
		return r.cpuLedgerHardware()
	}
	hw := ledger.Hardware{GPUs: uint32(len(r.GPUs)), VRAMMiB: math.MaxUint64, TFLOPSMilli: math.MaxUint64}
	var names []string
	for _, g := range r.GPUs {
		if g.MemoryTotalMiB == 0 {
			return ledger.Hardware{}, fmt.Errorf("%w: GPU %d (%s): memory unknown", ErrIncomplete, g.Index, g.Name)
		}
		if g.TFLOPS <= 0 {
			return ledger.Hardware{}, fmt.Errorf("%w: GPU %d (%s): TFLOPS unknown (not in the table of known GPUs, not measured, and no NVML core count to derive it from); declare the hardware in configuration", ErrIncomplete, g.Index, g.Name)
		}
		hw.VRAMMiB = min(hw.VRAMMiB, g.MemoryTotalMiB)
		hw.TFLOPSMilli = min(hw.TFLOPSMilli, uint64(math.Round(g.TFLOPS*1000)))
		name := g.Name
		if g.Published != nil {
			name = g.Published.Model
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	hw.GPUModel = names[0]
	if len(names) > 1 {
		hw.GPUModel = "mixed: " + strings.Join(names, ", ")
	}
	hw.GPUModel = truncate(hw.GPUModel, maxGPUModel)
	return hw, nil
}

// maxGPUModel is the ledger's limit on gpu_model (MsgRegisterNode validation).
const maxGPUModel = 64

func (r Report) cpuLedgerHardware() (ledger.Hardware, error) {
	mem := r.Memory.AvailableBytes
	if mem == 0 {
		mem = r.Memory.TotalBytes
	}
	switch {
	case mem>>20 == 0:
		return ledger.Hardware{}, fmt.Errorf("%w: CPU node: memory unknown", ErrIncomplete)
	case r.CPU.MeasuredGOPSInt8 <= 0:
		return ledger.Hardware{}, fmt.Errorf("%w: CPU node: throughput not measured (%s)", ErrIncomplete, r.CPU.Bench)
	}
	model := shortCPUName(r.CPU.Model)
	if model == "" {
		model = r.CPU.Arch
	}
	return ledger.Hardware{
		GPUModel:    truncate("cpu: "+model, maxGPUModel),
		GPUs:        1,
		VRAMMiB:     mem >> 20,
		TFLOPSMilli: max(1, uint64(math.Round(r.CPU.MeasuredGOPSInt8))),
	}, nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
