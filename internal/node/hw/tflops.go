package hw

import (
	"fmt"
	"math"
	"strings"
)

// Published is NVIDIA's published throughput for a GPU model. All figures are
// dense (without the 2:4 sparsity that NVIDIA's headline numbers often
// include) and tensor figures use FP32 accumulation where a card has two
// rates (GeForce cards run FP16 accumulation twice as fast).
type Published struct {
	Model string `json:"model"`
	// TensorTFLOPS is the dense BF16 tensor rate, or FP16 on cards without
	// BF16 (Turing T4, Volta V100); TensorPrecision says which.
	TensorTFLOPS    float64 `json:"tensor_tflops"`
	TensorPrecision string  `json:"tensor_precision"`
	FP32TFLOPS      float64 `json:"fp32_tflops"`
	Source          string  `json:"source"`
}

// Sources of the table below (NVIDIA datasheets and architecture whitepapers):
const (
	srcH200  = "NVIDIA H200 datasheet, nvidia.com/en-us/data-center/h200 (sparse BF16 halved)"
	srcH100  = "NVIDIA H100 datasheet, nvidia.com/en-us/data-center/h100 (sparse BF16 halved)"
	srcA100  = "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf)"
	srcL40S  = "NVIDIA L40S datasheet, nvidia.com/en-us/data-center/l40s (sparse BF16 halved)"
	srcL40   = "NVIDIA L40 datasheet, nvidia.com/en-us/data-center/l40 (sparse BF16 halved)"
	srcL4    = "NVIDIA L4 datasheet, nvidia.com/en-us/data-center/l4 (sparse BF16 halved)"
	srcA10   = "NVIDIA A10 datasheet, nvidia.com/en-us/data-center/products/a10-gpu (sparse BF16 halved)"
	srcAda   = "NVIDIA Ada GPU architecture whitepaper v2.1, appendix A (FP16/BF16 tensor, FP32 accumulate)"
	srcGA102 = "NVIDIA Ampere GA102 GPU architecture whitepaper v2, appendix A (FP16/BF16 tensor, FP32 accumulate)"
	srcT4    = "NVIDIA T4 datasheet (t4-tensor-core-datasheet-951643.pdf), mixed-precision FP16/FP32"
	srcV100  = "NVIDIA V100 datasheet (volta-v100-datasheet-update-us-1165301-r5.pdf), tensor performance"
)

// knownGPUs are matched by normalised name (see normaliseGPUName): the names
// NVML and nvidia-smi report, plus each model name itself, so a configured
// "RTX 4090" or "A100 80GB" matches too. Matching is exact on purpose: an
// "RTX 4080 SUPER" or "RTX 3080 Ti" is a different card, not an RTX 4080/3080.
var knownGPUs = []struct {
	Published
	names []string
}{
	{Published{"H200", 989, "bf16", 67, srcH200}, []string{"NVIDIA H200", "H200 SXM"}},
	{Published{"H200 NVL", 835.5, "bf16", 60, srcH200}, []string{"NVIDIA H200 NVL"}},
	{Published{"H100 SXM", 989, "bf16", 67, srcH100}, []string{"NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB"}},
	{Published{"H100 PCIe", 756, "bf16", 51, srcH100}, []string{"NVIDIA H100 PCIe"}},
	{Published{"H100 NVL", 835.5, "bf16", 60, srcH100}, []string{"NVIDIA H100 NVL"}},
	{Published{"A100 40GB", 312, "bf16", 19.5, srcA100}, []string{"NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB"}},
	{Published{"A100 80GB", 312, "bf16", 19.5, srcA100}, []string{"NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"}},
	{Published{"L40S", 362.05, "bf16", 91.6, srcL40S}, []string{"NVIDIA L40S"}},
	{Published{"L40", 181.05, "bf16", 90.5, srcL40}, []string{"NVIDIA L40"}},
	{Published{"L4", 121, "bf16", 30.3, srcL4}, []string{"NVIDIA L4"}},
	{Published{"A10", 125, "bf16", 31.2, srcA10}, []string{"NVIDIA A10"}},
	{Published{"RTX 4090", 165.2, "bf16", 82.6, srcAda}, []string{"NVIDIA GeForce RTX 4090"}},
	{Published{"RTX 4080", 97.5, "bf16", 48.7, srcAda}, []string{"NVIDIA GeForce RTX 4080"}},
	{Published{"RTX 3090", 71, "bf16", 35.6, srcGA102}, []string{"NVIDIA GeForce RTX 3090"}},
	{Published{"RTX 3080", 59.5, "bf16", 29.8, srcGA102}, []string{"NVIDIA GeForce RTX 3080"}},
	{Published{"T4", 65, "fp16", 8.1, srcT4}, []string{"Tesla T4", "NVIDIA T4"}},
	{Published{"V100 SXM2", 125, "fp16", 15.7, srcV100}, []string{"Tesla V100-SXM2-16GB", "Tesla V100-SXM2-32GB", "Tesla V100-SXM2-32GB-LS"}},
	{Published{"V100 PCIe", 112, "fp16", 14, srcV100}, []string{"Tesla V100-PCIE-16GB", "Tesla V100-PCIE-32GB"}},
	{Published{"V100S PCIe", 130, "fp16", 16.4, srcV100}, []string{"Tesla V100S-PCIE-32GB"}},
}

// KnownGPU returns the published figures for a GPU name as NVML or
// nvidia-smi reports it ("NVIDIA GeForce RTX 4090"), or a model name from
// the table ("RTX 4090").
func KnownGPU(name string) (Published, bool) {
	n := normaliseGPUName(name)
	if n == "" {
		return Published{}, false
	}
	for _, k := range knownGPUs {
		if normaliseGPUName(k.Model) == n {
			return k.Published, true
		}
		for _, alias := range k.names {
			if normaliseGPUName(alias) == n {
				return k.Published, true
			}
		}
	}
	return Published{}, false
}

// normaliseGPUName lowercases a name, drops vendor and brand words and treats
// '-' and '_' as spaces: "NVIDIA A100-SXM4-40GB" → "a100 sxm4 40gb".
func normaliseGPUName(name string) string {
	name = strings.NewReplacer("-", " ", "_", " ").Replace(strings.ToLower(name))
	words := strings.Fields(name)
	out := words[:0]
	for _, w := range words {
		if w != "nvidia" && w != "geforce" && w != "tesla" {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// derivedFP32TFLOPS is cores × clock × 2 (one fused multiply-add per core per
// cycle): the peak NVIDIA itself quotes, computed from NVML's readings.
func derivedFP32TFLOPS(cores int, smClockMaxMHz uint32) float64 {
	if cores <= 0 || smClockMaxMHz == 0 {
		return 0
	}
	return float64(cores) * float64(smClockMaxMHz) * 2 / 1e6
}

// derivedTolerance is how far a derived FP32 figure may fall below the
// table's before the Report warns: board clocks vary by a few percent, a
// misidentified or clocked-down card by far more. Above the table is normal:
// NVML's max SM clock on GeForce cards exceeds their rated boost clock (an
// RTX 4090 reports about 3.1 GHz against 2.52 GHz), so a derived figure can
// overstate the published one by 20% or more.
const derivedTolerance = 0.15

// rateGPU sets g's published, derived and declared throughput, warning in r
// when the table, NVML's readings and the measured rate disagree. A known GPU is declared
// at its table figure when its measured rate confirms it (or nothing was measured), else
// at the measured rate; an unknown one at its measured rate, else its derived FP32 rate.
func rateGPU(g *GPU, r *Report) {
	g.DerivedFP32TFLOPS = round(derivedFP32TFLOPS(g.CUDACores, g.SMClockMaxMHz), 1)
	measured := func(why string) {
		g.TFLOPS, g.TFLOPSPrecision = g.MeasuredTFLOPS, "bf16"
		g.TFLOPSBasis = fmt.Sprintf("measured: %.1f TFLOPS bf16 on its tensor cores%s", g.MeasuredTFLOPS, why)
	}
	if p, ok := KnownGPU(g.Name); ok {
		g.Published = &p
		g.TFLOPS, g.TFLOPSPrecision = p.TensorTFLOPS, p.TensorPrecision
		g.TFLOPSBasis = "table: dense " + p.TensorPrecision + " tensor, " + p.Model
		if d := g.DerivedFP32TFLOPS; d > 0 && d < (1-derivedTolerance)*p.FP32TFLOPS {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"GPU %d (%s): derived FP32 %.1f TFLOPS (%d cores × %d MHz × 2) is more than %.0f%% below the published %.1f; is the card what its name says, or clocked down?",
				g.Index, g.Name, d, g.CUDACores, g.SMClockMaxMHz, derivedTolerance*100, p.FP32TFLOPS))
		}
		switch m := g.MeasuredTFLOPS; {
		case m <= 0:
		case m >= confirmFraction*p.TensorTFLOPS:
			g.TFLOPSBasis += fmt.Sprintf(", confirmed: %.1f measured", m)
		default:
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"GPU %d (%s): measured %.1f TFLOPS bf16, less than a third of the published %.1f %s: declared at the measured rate; is the card what its name says, shared, or throttled?",
				g.Index, g.Name, m, p.TensorTFLOPS, p.TensorPrecision))
			measured(fmt.Sprintf(", below a third of the published %.1f for %s", p.TensorTFLOPS, p.Model))
		}
		return
	}
	if g.MeasuredTFLOPS > 0 {
		measured(", not in the table")
		return
	}
	if g.DerivedFP32TFLOPS > 0 {
		g.TFLOPS, g.TFLOPSPrecision = g.DerivedFP32TFLOPS, "fp32"
		g.TFLOPSBasis = fmt.Sprintf("derived: fp32 = %d cores × %d MHz × 2 (NVML), not in the table", g.CUDACores, g.SMClockMaxMHz)
		return
	}
	r.Warnings = append(r.Warnings, fmt.Sprintf(
		"GPU %d (%s): TFLOPS unknown: not in the table of known GPUs, not measured, and no NVML core count to derive it from", g.Index, g.Name))
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}
