package cli

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/omnisync/omnisync/internal/tensor"
)

// modelFormat is how --model's file is laid out, for help and errors.
const modelFormat = `a NumPy .npz (numpy.savez) with, for each layer i from 0, w{i}: int8 weights of shape ` +
	`(outputs, inputs) and b{i}: integer biases of shape (outputs,) within int32, and shifts: ` +
	`one requantising right shift per layer (0..31)`

// maxModelFile bounds what readMLPNPZ reads: the largest model tensor.MLP allows is 16
// layers of 4096×4096 int8 weights, 256 MiB, far beyond what a job's inputs carry.
const maxModelFile = 1 << 28

// readMLPNPZ reads an int8 MLP from an .npz file laid out as modelFormat says.
func readMLPNPZ(path string) (*tensor.MLP, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parseMLPNPZ(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (want %s)", path, err, modelFormat)
	}
	return m, nil
}

// parseMLPNPZ decodes an .npz archive as modelFormat says.
func parseMLPNPZ(raw []byte) (*tensor.MLP, error) {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("not an .npz archive: %w", err)
	}
	arrays := map[string][]byte{}
	var total uint64
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, ".npy")
		if total += f.UncompressedSize64; total > maxModelFile {
			return nil, fmt.Errorf("its arrays hold over %d bytes", maxModelFile)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("array %s: %w", name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("array %s: %w", name, err)
		}
		arrays[name] = b
	}
	shiftsFile, ok := arrays["shifts"]
	if !ok {
		return nil, fmt.Errorf("no shifts array")
	}
	shape, shifts, err := tensor.ParseNPYInts(shiftsFile)
	if err != nil {
		return nil, fmt.Errorf("shifts: %w", err)
	}
	if len(shape) > 1 || len(shifts) < 1 || len(shifts) > tensor.MLPMaxLayers {
		return nil, fmt.Errorf("shifts has shape %v: want one shift per layer, 1..%d layers", shape, tensor.MLPMaxLayers)
	}
	m := &tensor.MLP{Layers: make([]tensor.MLPLayer, len(shifts))}
	for i, shift := range shifts {
		w, b := fmt.Sprintf("w%d", i), fmt.Sprintf("b%d", i)
		if shift < 0 || shift > tensor.MLPMaxShift {
			return nil, fmt.Errorf("shifts[%d] is %d, want 0..%d", i, shift, tensor.MLPMaxShift)
		}
		weights, err := tensor.ParseNPYInt8(arrays[w])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w, err)
		}
		shape, biases, err := tensor.ParseNPYInts(arrays[b])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b, err)
		}
		if len(shape) != 1 || len(biases) != weights.Rows {
			return nil, fmt.Errorf("%s has shape %v: want (%d,), one bias per row of %s", b, shape, weights.Rows, w)
		}
		l := tensor.MLPLayer{LayerShape: tensor.LayerShape{In: weights.Cols, Out: weights.Rows, Shift: uint8(shift)}, Weights: weights.Data, Biases: make([]int32, len(biases))}
		for j, v := range biases {
			if int64(int32(v)) != v {
				return nil, fmt.Errorf("%s[%d] is %d, beyond int32", b, j, v)
			}
			l.Biases[j] = int32(v)
		}
		m.Layers[i] = l
	}
	for name := range arrays {
		if name != "shifts" && !isLayerArray(name, len(shifts)) {
			return nil, fmt.Errorf("array %s is not part of a %d-layer model", name, len(shifts))
		}
	}
	return m, m.Validate()
}

// isLayerArray reports whether name is w{i} or b{i} for a layer i below layers.
func isLayerArray(name string, layers int) bool {
	for i := range layers {
		if name == fmt.Sprintf("w%d", i) || name == fmt.Sprintf("b%d", i) {
			return true
		}
	}
	return false
}
