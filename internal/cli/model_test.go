package cli

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/zk"
)

// npyVector is a 1-D .npy file as numpy.save writes one: descr '<i4' or '<i8'.
func npyVector(descr string, v []int64) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }", descr, len(v))
	header := dict + strings.Repeat(" ", 63-(10+len(dict))%64) + "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	b = append(b, header...)
	for _, x := range v {
		if descr == "<i4" {
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		} else {
			b = binary.LittleEndian.AppendUint64(b, uint64(x))
		}
	}
	return b
}

// npz is an .npz archive of the named .npy files, as numpy.savez writes one.
func npz(t testing.TB, arrays map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(arrays))
	for name := range arrays {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		w, err := zw.Create(name + ".npy")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(arrays[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// modelArrays are m's arrays as modelFormat lays them out, biases as int32 and the
// shifts as numpy's default int64.
func modelArrays(m *tensor.MLP) map[string][]byte {
	arrays := map[string][]byte{}
	var shifts []int64
	for i, l := range m.Layers {
		w := &tensor.Int8Matrix{Rows: l.Out, Cols: l.In, Data: l.Weights}
		b := make([]int64, len(l.Biases))
		for j, v := range l.Biases {
			b[j] = int64(v)
		}
		arrays[fmt.Sprintf("w%d", i)], arrays[fmt.Sprintf("b%d", i)] = w.NPY(), npyVector("<i4", b)
		shifts = append(shifts, int64(l.Shift))
	}
	arrays["shifts"] = npyVector("<i8", shifts)
	return arrays
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestModelNPZRoundTripsAndRefusesWhatIsNotAModel(t *testing.T) {
	m := devnet.RandomMLP(zk.Shape{{In: 6, Out: 4, Shift: 7}, {In: 4, Out: 3, Shift: 5}}, 1)
	got, err := parseMLPNPZ(npz(t, modelArrays(m)))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.MarshalBinary()
	if back, _ := got.MarshalBinary(); !bytes.Equal(back, want) {
		t.Fatal("the model read from the .npz is not the one written")
	}
	for name, change := range map[string]func(a map[string][]byte){
		"no shifts":          func(a map[string][]byte) { delete(a, "shifts") },
		"a layer missing":    func(a map[string][]byte) { delete(a, "w1") },
		"a stray array":      func(a map[string][]byte) { a["w2"] = a["w1"] },
		"shift out of range": func(a map[string][]byte) { a["shifts"] = npyVector("<i8", []int64{7, 32}) },
		"bias beyond int32":  func(a map[string][]byte) { a["b1"] = npyVector("<i8", []int64{0, 1 << 31, 0}) },
		"too few biases":     func(a map[string][]byte) { a["b1"] = npyVector("<i4", []int64{0, 0}) },
		"layers that do not chain": func(a map[string][]byte) {
			w, _ := tensor.RandomInt8(3, 5, 1)
			a["w1"] = w.NPY()
		},
		"float weights": func(a map[string][]byte) {
			w, _ := tensor.RandomFloat32(3, 4, 1)
			a["w1"] = w.NPY()
		},
	} {
		a := modelArrays(m)
		change(a)
		if _, err := parseMLPNPZ(npz(t, a)); err == nil {
			t.Errorf("%s: read as a model", name)
		}
	}
	if _, err := parseMLPNPZ([]byte("PK not really")); err == nil || !strings.Contains(err.Error(), "not an .npz") {
		t.Errorf("a non-archive: %v", err)
	}
}

func FuzzParseMLPNPZ(f *testing.F) {
	f.Add(npz(f, modelArrays(devnet.RandomMLP(zk.Shape{{In: 3, Out: 2, Shift: 4}}, 2))))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMLPNPZ(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed an invalid model: %v", err)
		}
	})
}

// Every kernel builds from the CLI's files the inputs the kernel takes, and job result
// reads back what it returns.
func TestJobSubmitBuildsEveryKernelsInputs(t *testing.T) {
	m := devnet.RandomMLP(zk.Shape{{In: 8, Out: 4, Shift: 7}, {In: 4, Out: 3, Shift: 5}}, 3)
	model := writeTemp(t, "model.npz", npz(t, modelArrays(m)))
	batch, _ := tensor.RandomInt8(5, 8, 4)
	row, _ := tensor.RandomInt8(1, 8, 5)
	a32, _ := tensor.RandomFloat32(3, 4, 6)
	b32, _ := tensor.RandomFloat32(4, 2, 7)
	base := jobSubmitFlags{budget: "1", maxPrice: "3", timeout: 60e9}

	s := base
	s.kernel, s.model, s.inputs = tensor.KernelMLPInt8, model, []string{"x=" + writeTemp(t, "x.npy", batch.NPY())}
	spec, data, err := s.spec()
	if err != nil {
		t.Fatal(err)
	}
	if spec.Verification != api.VerifyFreivald || len(spec.Inputs) != 2 || spec.Inputs[0].Name != "model" {
		t.Fatalf("mlp spec %+v", spec)
	}
	out, err := tensor.RunKernel(tensor.KernelMLPInt8, [][]byte{data["model"], data["x"]})
	if err != nil {
		t.Fatalf("the kernel refuses the CLI's mlp inputs: %v", err)
	}
	npy, kind, rows, cols, err := tensorOutput(out)
	want, _ := m.ForwardBatch(batch)
	if err != nil || kind != "int8 MLP output" || rows != 5 || cols != 3 || !bytes.Equal(npy, want.NPY()) {
		t.Fatalf("mlp output read back as %s %dx%d: %v", kind, rows, cols, err)
	}

	s.verify = api.VerifyZK
	if _, _, err := s.spec(); err == nil || !strings.Contains(err.Error(), "one input row") {
		t.Fatalf("a zk job of 5 rows: %v", err)
	}
	s.inputs = []string{"x=" + writeTemp(t, "x1.npy", row.NPY())}
	spec, data, err = s.spec()
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := zk.ModelCommitment(m)
	in, err := zk.DecodeInput(data["input"])
	if err != nil || spec.ZK == nil || spec.ZK.ModelCommitment != mc.String() || !slices.Equal(in.Values, row.Data) ||
		spec.ZK.InputCommitment != zk.InputCommitment(in.Values, in.Salt).String() || spec.Budget != 1_000_000 || spec.TimeoutSeconds != 60 {
		t.Fatalf("zk spec %+v, input %v", spec, err)
	}
	res, _ := zk.Result{Output: []int8{1, -2, 3}, Proof: []byte{9}}.MarshalBinary()
	if npy, kind, _, cols, err := tensorOutput(res); err != nil || kind != "int8 MLP output, proved" || cols != 3 ||
		!bytes.Equal(npy, (&tensor.Int8Matrix{Rows: 1, Cols: 3, Data: []int8{1, -2, 3}}).NPY()) {
		t.Fatalf("zk output read back as %s: %v", kind, err)
	}

	s = base
	s.kernel, s.inputs = tensor.KernelMatMulFloat32, []string{"a=" + writeTemp(t, "a.npy", a32.NPY()), "b=" + writeTemp(t, "b.npy", b32.NPY())}
	_, data, err = s.spec()
	if err != nil {
		t.Fatal(err)
	}
	if out, err = tensor.RunKernel(tensor.KernelMatMulFloat32, [][]byte{data["a"], data["b"]}); err != nil {
		t.Fatalf("the kernel refuses the CLI's fp32 inputs: %v", err)
	}
	if _, kind, rows, cols, err := tensorOutput(out); err != nil || kind != "float32 matrix" || rows != 3 || cols != 2 {
		t.Fatalf("fp32 output read back as %s %dx%d: %v", kind, rows, cols, err)
	}

	for _, bad := range []func(*jobSubmitFlags){
		func(s *jobSubmitFlags) { s.kernel, s.model = tensor.KernelMatMulInt8, model },            // a model for a product
		func(s *jobSubmitFlags) { s.kernel, s.model = tensor.KernelMLPInt8, "" },                  // an MLP without one
		func(s *jobSubmitFlags) { s.verify = api.VerifyZK },                                       // zk of a product
		func(s *jobSubmitFlags) { s.inputs = []string{"a=" + writeTemp(t, "i8.npy", row.NPY())} }, // int8 for fp32
	} {
		bad2 := s
		bad(&bad2)
		if _, _, err := bad2.spec(); err == nil {
			t.Errorf("%+v: accepted", bad2)
		}
	}
	if _, _, _, _, err := tensorOutput([]byte("neither")); err == nil {
		t.Error("junk read as a tensor output")
	}
}
