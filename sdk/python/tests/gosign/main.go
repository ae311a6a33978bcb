// Command gosign is the Go half of the Python SDK's byte-compatibility test
// (sdk/python/tests/test_gocompat.py). It reads one JSON request on stdin, does with the
// project's own packages what the SDK does in Python (encode and hash job specs, sign
// transactions, output requests and job-list requests, derive addresses and job ids,
// encode matrices, pack a container output archive), and prints the results as JSON on
// stdout for the test to compare byte for byte. Ed25519 signatures are deterministic, so
// the same seed signs the same bytes identically in both languages.
package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
)

// request is what the Python test asks for. Byte fields travel as base64, as Go's
// encoding/json writes []byte.
type request struct {
	Seed        []byte        `json:"seed"`
	ChainID     string        `json:"chain_id"`
	Seq         uint64        `json:"seq"`
	Specs       [][]byte      `json:"specs"` // each the SDK's JSON encoding of a spec
	CancelJobID string        `json:"cancel_job_id"`
	AuthJobID   string        `json:"auth_job_id"`
	AuthExpires int64         `json:"auth_expires"`
	NPYInt8     [][]byte      `json:"npy_int8"` // .npy files the SDK wrote
	MatMul      [][]byte      `json:"matmul"`   // OMT1 operands [A, B] the SDK encoded
	Archive     *archiveInput `json:"archive,omitempty"`
}

type archiveInput struct {
	ExitCode int         `json:"exit_code"`
	Files    []fileInput `json:"files"`
}

type fileInput struct {
	Path string `json:"path"`
	Data []byte `json:"data"`
}

// specResult is Go's view of one spec: its canonical encoding and hash, the field
// Validate names (empty when valid), and the create_job transaction that escrows it.
type specResult struct {
	JSON          []byte `json:"json"`
	Hash          string `json:"hash"`
	InvalidField  string `json:"invalid_field"`
	DecodeError   string `json:"decode_error,omitempty"`
	CreateJobTx   []byte `json:"create_job_tx,omitempty"`
	CreateJobHash string `json:"create_job_hash,omitempty"`
}

type npyResult struct {
	OMT   []byte `json:"omt"`
	NPY   []byte `json:"npy"`
	Error string `json:"error,omitempty"`
}

type response struct {
	Address      string       `json:"address"`
	KeyFile      string       `json:"key_file"`
	JobID        string       `json:"job_id"` // of the create_job with sequence Seq
	Specs        []specResult `json:"specs"`
	CancelJobTx  []byte       `json:"cancel_job_tx"`
	OutputAuth   string       `json:"output_auth"`
	JobListAuth  string       `json:"job_list_auth"` // expiring at AuthExpires too
	NPYInt8      []npyResult  `json:"npy_int8"`
	MatMulOMT    []byte       `json:"matmul_omt"`
	MatMulNPY    []byte       `json:"matmul_npy"`
	ArchiveBytes []byte       `json:"archive"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gosign:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var req request
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	if len(req.Seed) != ed25519.SeedSize {
		return fmt.Errorf("seed is %d bytes, want %d", len(req.Seed), ed25519.SeedSize)
	}
	key := ed25519.NewKeyFromSeed(req.Seed)
	addr := keys.AddressOfKey(key)
	resp := response{Address: string(addr), KeyFile: string(keys.MarshalSolanaJSON(key)), JobID: ledger.JobID(addr, req.Seq)}

	for _, raw := range req.Specs {
		resp.Specs = append(resp.Specs, specOf(key, req.ChainID, req.Seq, raw))
	}
	cancel, err := ledger.SignTx(key, req.ChainID, req.Seq, ledger.Msg{CancelJob: &ledger.MsgCancelJob{JobID: req.CancelJobID}})
	if err != nil {
		return err
	}
	resp.CancelJobTx = cancel
	auth := api.OutputAuth{Address: string(addr), Expires: req.AuthExpires, Signature: ed25519.Sign(key, api.OutputAuthMessage(req.AuthJobID, req.AuthExpires))}
	if err := api.VerifyOutputAuth(key.Public().(ed25519.PublicKey), req.AuthJobID, auth, time.Unix(req.AuthExpires-1, 0), api.MaxOutputAuthTTL); err != nil {
		return fmt.Errorf("own output auth does not verify: %w", err)
	}
	resp.OutputAuth = auth.Header()
	list := api.SignJobListAuth(key, string(addr), time.Minute, time.Unix(req.AuthExpires-60, 0))
	if err := api.VerifyJobListAuth(key.Public().(ed25519.PublicKey), list, time.Unix(req.AuthExpires-1, 0), api.MaxOutputAuthTTL); err != nil {
		return fmt.Errorf("own job list auth does not verify: %w", err)
	}
	resp.JobListAuth = list.Header()

	for _, f := range req.NPYInt8 {
		resp.NPYInt8 = append(resp.NPYInt8, npyOf(f))
	}
	if len(req.MatMul) > 0 {
		if resp.MatMulOMT, err = tensor.RunKernel(tensor.KernelMatMulInt8, req.MatMul); err != nil {
			return fmt.Errorf("matmul: %w", err)
		}
		m, err := tensor.DecodeInt32(resp.MatMulOMT)
		if err != nil {
			return err
		}
		resp.MatMulNPY = m.NPY()
	}
	if a := req.Archive; a != nil {
		co := api.ContainerOutput{ExitCode: a.ExitCode}
		for _, f := range a.Files {
			co.Files = append(co.Files, api.OutputFile{Path: f.Path, Data: f.Data})
		}
		if resp.ArchiveBytes, err = api.PackOutput(co); err != nil {
			return fmt.Errorf("pack output: %w", err)
		}
	}
	return json.NewEncoder(out).Encode(resp)
}

// specOf decodes the SDK's encoding of a spec as the REST API does (unknown fields
// refused), re-encodes and hashes it, validates it, and signs the create_job escrowing it
// exactly as devnet.SubmitSigned does.
func specOf(key ed25519.PrivateKey, chainID string, seq uint64, raw []byte) specResult {
	var spec api.JobSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return specResult{DecodeError: err.Error()}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return specResult{DecodeError: err.Error()}
	}
	r := specResult{JSON: b, Hash: spec.Hash()}
	var fe *api.FieldError
	if err := spec.Validate(); errors.As(err, &fe) {
		r.InvalidField = fe.Field
		return r
	} else if err != nil {
		r.InvalidField = "?" + err.Error()
		return r
	}
	tx, err := ledger.SignTx(key, chainID, seq, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: spec.Hash(), Budget: spec.Budget, MaxPricePerHour: spec.MaxPricePerHour,
		Verification: spec.Verification, TimeoutSeconds: spec.TimeoutSeconds,
	}})
	if err != nil {
		r.DecodeError = err.Error()
		return r
	}
	r.CreateJobTx, r.CreateJobHash = tx, ledger.HashHex(tx)
	return r
}

// npyOf parses a .npy file as `omnisync job submit` does and re-encodes it both ways.
func npyOf(file []byte) npyResult {
	m, err := tensor.ParseNPYInt8(file)
	if err != nil {
		return npyResult{Error: err.Error()}
	}
	omt, err := m.MarshalBinary()
	if err != nil {
		return npyResult{Error: err.Error()}
	}
	return npyResult{OMT: omt, NPY: m.NPY()}
}
