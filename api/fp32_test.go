package api

import (
	"errors"
	"testing"
)

// The fp32 product is checked at freivalds and audit; the challenge level, whose hidden
// rows are exact int8 rows, and the redundant level, which compares outputs bit for bit,
// refuse it by name.
func TestValidateFP32Levels(t *testing.T) {
	for _, level := range []string{VerifyFreivald, VerifyAudit, VerifyRedundant, VerifyChallenge} {
		s := zkSpec()
		s.Workload.Kernel, s.Verification, s.ZK = KernelMatMulFP32, level, nil
		err := s.Validate()
		var fe *FieldError
		switch {
		case (level == VerifyFreivald || level == VerifyAudit) && err != nil:
			t.Errorf("%s: %v", level, err)
		case (level == VerifyChallenge || level == VerifyRedundant) && (!errors.As(err, &fe) || fe.Field != "verification"):
			t.Errorf("%s: err = %v, want a verification field error", level, err)
		}
	}
}
