package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func zkSpec() JobSpec {
	digest := "sha256:" + strings.Repeat("ab", 32)
	return JobSpec{
		Workload:        Workload{Kind: WorkloadTensor, Kernel: KernelMLPInt8},
		Inputs:          []Input{{Name: "model", Digest: digest, Size: 100}, {Name: "input", Digest: digest, Size: 30}},
		Resources:       Resources{GPUs: 1},
		MaxPricePerHour: 1, Budget: 1, TimeoutSeconds: 60,
		Verification: VerifyZK,
		ZK:           &ZKStatement{Shape: "8x4s7-4x2s6", ModelCommitment: strings.Repeat("0a", 32), InputCommitment: strings.Repeat("1b", 32)},
	}
}

// The zk level and the mlp-int8 kernel go together, with a well-formed statement; a spec
// without one hashes as it always did.
func TestValidateZK(t *testing.T) {
	if err := zkSpec().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edit  func(*JobSpec)
		field string
	}{
		{"no statement", func(s *JobSpec) { s.ZK = nil }, "zk"},
		{"another kernel", func(s *JobSpec) { s.Workload.Kernel = "matmul-int8" }, "verification"},
		{"mlp at challenge", func(s *JobSpec) { s.Verification, s.ZK = VerifyChallenge, nil }, "verification"},
		{"mlp at redundant", func(s *JobSpec) { s.Verification, s.ZK = VerifyRedundant, nil }, "verification"},
		{"statement at freivalds", func(s *JobSpec) { s.Verification = VerifyFreivald }, "zk"},
		{"mlp at freivalds, one input", func(s *JobSpec) { s.Verification, s.ZK, s.Inputs = VerifyFreivald, nil, s.Inputs[:1] }, "inputs"},
		{"statement at another level", func(s *JobSpec) { s.Workload.Kernel, s.Verification = "matmul-int8", VerifyFreivald }, "zk"},
		{"one input", func(s *JobSpec) { s.Inputs = s.Inputs[:1] }, "inputs"},
		{"no shape", func(s *JobSpec) { s.ZK.Shape = "" }, "zk.shape"},
		{"shape with spaces", func(s *JobSpec) { s.ZK.Shape = "8x4s7 4x2s6" }, "zk.shape"},
		{"short commitment", func(s *JobSpec) { s.ZK.ModelCommitment = "0a" }, "zk.model_commitment"},
		{"upper-case commitment", func(s *JobSpec) { s.ZK.InputCommitment = strings.Repeat("1B", 32) }, "zk.input_commitment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := zkSpec()
			st := *s.ZK
			s.ZK = &st
			c.edit(&s)
			var fe *FieldError
			if err := s.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, c.field)
			}
		})
	}
	// Batch inference, checked layer by layer, at freivalds and audit.
	for _, level := range []string{VerifyFreivald, VerifyAudit} {
		s := zkSpec()
		s.Verification, s.ZK = level, nil
		if err := s.Validate(); err != nil {
			t.Fatalf("mlp-int8 at %s: %v", level, err)
		}
	}
	// Without a statement the encoding, and so every existing spec's hash, is unchanged.
	plain := zkSpec()
	plain.ZK = nil
	if b, _ := json.Marshal(plain); strings.Contains(string(b), `"zk":`) {
		t.Fatalf("a spec without a statement encodes one: %s", b)
	}
}
