// Command gosign is the Go half of the Python SDK's byte-compatibility test
// (sdk/python/tests/test_gocompat.py). It reads one JSON request on stdin, does with the
// project's own packages what the SDK does in Python (encode and hash job specs, sign
// transactions, output requests and job-list requests, derive addresses and job ids,
// encode and decode int8, int32 and float32 matrices and int8 MLP models, run the tensor
// kernels, pack a container output archive), and prints the results as JSON on
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

	Float32NPY    [][]byte       `json:"float32_npy"`    // float32 .npy files the SDK wrote
	Float32OMT    [][]byte       `json:"float32_omt"`    // OMT1 float32 blobs, the SDK's or broken ones
	Float32Random []randomInput  `json:"float32_random"` // matrices Go draws (tensor.RandomFloat32)
	MatMulFP32    [][]byte       `json:"matmul_fp32"`    // OMT1 float32 operands [A, B]
	Models        [][]byte       `json:"models"`         // OMZM models, the SDK's or broken ones
	ModelLayers   [][]layerInput `json:"model_layers"`   // models as plain numbers, for Go to encode
	MLPRun        [][][]byte     `json:"mlp_run"`        // each [model, X] for the mlp-int8 kernel
}

type randomInput struct {
	Rows int    `json:"rows"`
	Cols int    `json:"cols"`
	Seed uint64 `json:"seed"`
}

type layerInput struct {
	In      int     `json:"in"`
	Out     int     `json:"out"`
	Shift   uint8   `json:"shift"`
	Weights []int8  `json:"weights"`
	Biases  []int32 `json:"biases"`
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

// blobResult is Go's re-encoding of one blob it decoded, or why it refused it.
type blobResult struct {
	Bytes []byte `json:"bytes,omitempty"`
	Shape string `json:"shape,omitempty"` // a model's MLPShape.ID
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

	Float32NPY    []npyResult  `json:"float32_npy"`
	Float32OMT    []blobResult `json:"float32_omt"`
	Float32Random [][]byte     `json:"float32_random"`
	MatMulFP32    []byte       `json:"matmul_fp32"`
	Models        []blobResult `json:"models"`
	ModelLayers   []blobResult `json:"model_layers"`
	MLPRun        [][]byte     `json:"mlp_run"` // each run's OMLT trace
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
	if err := tensors(&req, &resp); err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(resp)
}

// tensors does the float32 and MLP half: decode what the SDK encoded and re-encode it,
// encode what the SDK encodes from plain numbers, and run both kernels.
func tensors(req *request, resp *response) error {
	for _, f := range req.Float32NPY {
		r := npyResult{}
		if m, err := tensor.ParseNPYFloat32(f); err != nil {
			r.Error = err.Error()
		} else if r.OMT, err = m.MarshalBinary(); err != nil {
			r.Error = err.Error()
		} else {
			r.NPY = m.NPY()
		}
		resp.Float32NPY = append(resp.Float32NPY, r)
	}
	for _, b := range req.Float32OMT {
		resp.Float32OMT = append(resp.Float32OMT, reencode(tensor.DecodeFloat32(b)))
	}
	for _, r := range req.Float32Random {
		m, err := tensor.RandomFloat32(r.Rows, r.Cols, r.Seed)
		if err != nil {
			return err
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		resp.Float32Random = append(resp.Float32Random, b)
	}
	if len(req.MatMulFP32) > 0 {
		var err error
		if resp.MatMulFP32, err = tensor.RunKernel(tensor.KernelMatMulFloat32, req.MatMulFP32); err != nil {
			return fmt.Errorf("matmul-fp32: %w", err)
		}
	}
	for _, b := range req.Models {
		m, err := tensor.DecodeMLP(b)
		r := reencode(m, err)
		if err == nil {
			r.Shape = m.Shape().ID()
		}
		resp.Models = append(resp.Models, r)
	}
	for _, layers := range req.ModelLayers {
		m := &tensor.MLP{}
		for _, l := range layers {
			m.Layers = append(m.Layers, tensor.MLPLayer{LayerShape: tensor.LayerShape{In: l.In, Out: l.Out, Shift: l.Shift}, Weights: l.Weights, Biases: l.Biases})
		}
		resp.ModelLayers = append(resp.ModelLayers, reencode(m, m.Validate()))
	}
	for _, run := range req.MLPRun {
		trace, err := tensor.RunKernel(tensor.KernelMLPInt8, run)
		if err != nil {
			return fmt.Errorf("mlp-int8: %w", err)
		}
		resp.MLPRun = append(resp.MLPRun, trace)
	}
	return nil
}

// reencode marshals what a decoder returned, or reports its error.
func reencode(m interface{ MarshalBinary() ([]byte, error) }, err error) blobResult {
	if err != nil {
		return blobResult{Error: err.Error()}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return blobResult{Error: err.Error()}
	}
	return blobResult{Bytes: b}
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
