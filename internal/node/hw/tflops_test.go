package hw

import "testing"

func TestKnownGPU(t *testing.T) {
	cases := []struct {
		name, wantModel string
	}{
		{"NVIDIA H200", "H200"},
		{"NVIDIA H100 80GB HBM3", "H100 SXM"},
		{"NVIDIA H100 PCIe", "H100 PCIe"},
		{"NVIDIA A100-SXM4-40GB", "A100 40GB"},
		{"NVIDIA A100 80GB PCIe", "A100 80GB"},
		{"NVIDIA L40S", "L40S"},
		{"NVIDIA L4", "L4"},
		{"NVIDIA A10", "A10"},
		{"NVIDIA GeForce RTX 4090", "RTX 4090"},
		{"Tesla T4", "T4"},
		{"Tesla V100-SXM2-32GB", "V100 SXM2"},
		{"rtx 4090", "RTX 4090"}, // as configured by hand
		{"A100 80GB", "A100 80GB"},
		// Different cards that share a prefix are not guessed.
		{"NVIDIA GeForce RTX 4080 SUPER", ""},
		{"NVIDIA GeForce RTX 3080 Ti", ""},
		{"NVIDIA A10G", ""},
		{"NVIDIA L40S-48C", ""},
		{"", ""},
	}
	for _, c := range cases {
		p, ok := KnownGPU(c.name)
		if ok != (c.wantModel != "") || p.Model != c.wantModel {
			t.Errorf("KnownGPU(%q) = %q, %v; want %q", c.name, p.Model, ok, c.wantModel)
		}
	}
}

func TestKnownGPUTableIsConsistent(t *testing.T) {
	seen := map[string]string{}
	for _, k := range knownGPUs {
		p := k.Published
		if p.TensorTFLOPS <= p.FP32TFLOPS || p.FP32TFLOPS <= 0 || p.Source == "" || (p.TensorPrecision != "bf16" && p.TensorPrecision != "fp16") {
			t.Errorf("%s: implausible row %+v", p.Model, p)
		}
		for _, name := range append([]string{p.Model}, k.names...) {
			n := normaliseGPUName(name)
			if other, dup := seen[n]; dup && other != p.Model {
				t.Errorf("%q matches both %s and %s", name, other, p.Model)
			}
			seen[n] = p.Model
			if got, _ := KnownGPU(name); got.Model != p.Model {
				t.Errorf("KnownGPU(%q) = %s, want %s", name, got.Model, p.Model)
			}
		}
	}
}
