"""int8 MLP models: building them, their OMZM encoding, the CLI's .npz, the reference
forward pass and the trace, and the refusals (each with a message saying what is wrong).
test_gocompat checks the bytes against Go's."""

from __future__ import annotations

import io
import struct
import tempfile
import unittest
import zipfile
from pathlib import Path

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import MLP, EncodingError, Int8Matrix, Int32Matrix, MLPLayer, MLPTrace, as_mlp
from omnisync.mlp import _npy_1d, zk_output

try:
    import numpy as np
except ImportError:  # NumPy is optional
    np = None

# Two layers, 3 inputs → 2 hidden → 1 output.
LAYERS = [([[1, 2, 3], [4, 5, -6]], [10, -20], 3), ([[7, 8]], [1], 0)]


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in arrays.items():
            z.writestr(name + ".npy", data)
    return buf.getvalue()


class ModelTest(unittest.TestCase):
    def test_layers_and_shape(self) -> None:
        m = MLP.from_layers(LAYERS)
        self.assertEqual(m.shape_id, "3x2s3-2x1s0")
        self.assertEqual((m.inputs, m.outputs), (3, 1))
        self.assertEqual(m.layers[0].weights, Int8Matrix.from_rows([[1, 2, 3], [4, 5, -6]]))
        self.assertEqual(m.layers[0].biases, (10, -20))
        self.assertEqual(MLP.from_layers(m.layers), m)

    def test_omzm_layout(self) -> None:
        b = MLP.from_layers(LAYERS).to_omzm()
        want = b"OMZM\x01\x02" + struct.pack(">IIB", 3, 2, 3) + struct.pack(">IIB", 2, 1, 0)
        want += bytes([1, 2, 3, 4, 5, 0xFA]) + struct.pack(">2i", 10, -20) + bytes([7, 8]) + struct.pack(">i", 1)
        self.assertEqual(b, want)
        self.assertEqual(MLP.from_omzm(b), MLP.from_layers(LAYERS))

    def test_trace_and_forward(self) -> None:
        m = MLP.from_layers(LAYERS)
        x = Int8Matrix.from_rows([[1, 2, 3], [-4, 5, 100]])
        t = m.trace(x)
        # Row 0: acc = (24, -24) → relu(acc >> 3) = (3, 0) → 7·3 + 1 = 22.
        self.assertEqual([a.tolist() for a in t.accumulators], [[[24, -24], [316, -611]], [[22], [274]]])
        self.assertEqual(t.output.tolist(), [[22], [127]], "the last layer clamps to 127")
        self.assertEqual(m.forward(x), t.output)
        neg = MLP.from_layers([([[-128]], [-(2**20)], 0)])
        self.assertEqual(neg.forward(Int8Matrix.from_rows([[127]])).tolist(), [[-128]], "the last layer clamps to -128")
        self.assertEqual(MLP.from_layers([([[1]], [-7], 1)]).forward(Int8Matrix.from_rows([[0]])).tolist(), [[-4]], "floor, not truncation")

    def test_trace_decodes(self) -> None:
        m = MLP.from_layers(LAYERS)
        t = m.trace(Int8Matrix.from_rows([[1, 2, 3], [-4, 5, 100]]))
        blob = b"OMLT\x01\x02" + struct.pack("<III", 2, 2, 1)
        blob += b"".join(struct.pack("<i", v) for a in t.accumulators for row in a.tolist() for v in row)
        blob += bytes([22, 127])
        self.assertEqual(MLPTrace.from_omlt(blob), t)
        for bad in (blob[:-1], blob + b"\0", b"OMLT\x02" + blob[5:], b"OMT1" + blob[4:], blob[:6] + struct.pack("<I", 0) + blob[10:]):
            with self.subTest(bad=bad[:12]), self.assertRaises(EncodingError):
                MLPTrace.from_omlt(bad)

    def test_zk_output(self) -> None:
        blob = b"OMZR\x01" + struct.pack(">I", 3) + bytes([1, 0xFF, 127]) + struct.pack(">I", 2) + b"pf"
        row, proof = zk_output(blob)
        self.assertEqual((row.tolist(), proof), ([[1, -1, 127]], b"pf"))
        with self.assertRaises(EncodingError):
            zk_output(blob + b"\0")

    def test_npz_round_trip_without_numpy(self) -> None:
        m = MLP.from_layers(LAYERS)
        self.assertEqual(MLP.from_npz(m.to_npz()), m)
        with tempfile.TemporaryDirectory() as d:
            p = m.save_npz(Path(d) / "model.npz")
            self.assertEqual(MLP.from_npz(p), m)
            self.assertEqual(as_mlp(str(p)), m)
        # numpy.savez([7, 6]) writes int64 shifts; biases may be any integer dtype.
        arrays = {
            "w0": Int8Matrix.from_rows([[1, 2, 3], [4, 5, -6]]).to_npy(),
            "b0": _npy_1d("<i8", struct.pack("<2q", 10, -20)),
            "w1": Int8Matrix.from_rows([[7, 8]]).to_npy(),
            "b1": _npy_1d("<u2", struct.pack("<H", 1)),
            "shifts": _npy_1d("<i8", struct.pack("<2q", 3, 0)),
        }
        self.assertEqual(MLP.from_npz(_npz(arrays)), m)

    def test_as_mlp_takes_what_callers_have(self) -> None:
        m = MLP.from_layers(LAYERS)
        for x in (m, m.to_omzm(), m.to_npz(), LAYERS):
            with self.subTest(x=type(x).__name__):
                self.assertEqual(as_mlp(x), m)
        with self.assertRaises(TypeError):
            as_mlp(3)  # type: ignore[arg-type]


class RefusalTest(unittest.TestCase):
    """Bad models are refused with a message naming what is wrong, before any bytes go out."""

    def _refused(self, layers: list, *words: str) -> None:
        with self.assertRaises(EncodingError) as cm:
            MLP.from_layers(layers)
        for w in words:
            self.assertIn(w, str(cm.exception))

    def test_bad_layers(self) -> None:
        w = [[1, 2]]
        self._refused([(w, [0], 32)], "layer 0 shift 32", "0..31")
        self._refused([(w, [0], -1)], "shift -1")
        self._refused([(w, [0], True)], "shift True")
        self._refused([(w, [2**31], 0)], "layer 0 bias 0 is 2147483648, beyond int32")
        self._refused([(w, [-(2**31) - 1], 0)], "beyond int32")
        self._refused([(w, [1.5], 0)], "bias 0 is 1.5: want an int32")
        self._refused([(w, [0, 0], 0)], "2 biases for 1 outputs")
        self._refused([([[1, 200]], [0], 0)], "layer 0 weights", "int8")
        self._refused([([[1, 2], [3]], [0, 0], 0)], "layer 0 weights", "row 1")
        self._refused([(w, [0], 0), ([[1, 2]], [0], 0)], "layers do not chain: layer 1 takes 2 inputs, layer 0 gives 1")
        self._refused([], "0 layers")
        self._refused([([[1]], [0], 0)] * 17, "17 layers")
        self._refused([([[0] * 4097], [0], 0)], "4097", "1..4096")
        self._refused([(w, [0])], "layer 0: want (weights, biases, shift)")

    def test_bad_omzm(self) -> None:
        good = MLP.from_layers(LAYERS).to_omzm()
        cases = {
            "not a model": b"OMT1" + good[4:],
            "shift 32 > 31": good[:14] + b"\x20" + good[15:],
            "layers do not chain": good[:15] + struct.pack(">I", 3) + good[19:],
            "bytes of parameters": good + b"\0",
            "0 layers": good[:5] + b"\x00" + good[6:],
        }
        for want, blob in cases.items():
            with self.subTest(want), self.assertRaises(EncodingError) as cm:
                MLP.from_omzm(blob)
            self.assertIn(want, str(cm.exception))

    def test_bad_npz(self) -> None:
        w0 = Int8Matrix.from_rows([[1, 2]]).to_npy()
        b0 = _npy_1d("<i4", struct.pack("<i", 5))
        one = _npy_1d("<i8", struct.pack("<q", 1))
        cases = {
            "not an .npz": b"PK nonsense",
            "no shifts array": _npz({"w0": w0, "b0": b0}),
            "shifts[0] is 32": _npz({"w0": w0, "b0": b0, "shifts": _npy_1d("<i8", struct.pack("<q", 32))}),
            "b0[0] is 2147483648, beyond int32": _npz({"w0": w0, "b0": _npy_1d("<i8", struct.pack("<q", 2**31)), "shifts": one}),
            "w0: npy dtype '<i4'": _npz({"w0": Int32Matrix.from_rows([[1, 2]]).to_npy(), "b0": b0, "shifts": one}),
            "b0 has shape (2,)": _npz({"w0": w0, "b0": _npy_1d("<i4", bytes(8)), "shifts": one}),
            "b0: npy dtype '<f4'": _npz({"w0": w0, "b0": _npy_1d("<f4", bytes(4)), "shifts": one}),
            "array w1 is not part of a 1-layer model": _npz({"w0": w0, "b0": b0, "w1": w0, "shifts": one}),
            "layer 1 needs arrays w1 and b1": _npz({"w0": w0, "b0": b0, "shifts": _npy_1d("<i8", struct.pack("<2q", 1, 1))}),
            "layers do not chain": _npz(
                {"w0": w0, "b0": b0, "w1": w0, "b1": b0, "shifts": _npy_1d("<i8", struct.pack("<2q", 1, 1))}
            ),
        }
        for want, data in cases.items():
            with self.subTest(want), self.assertRaises(EncodingError) as cm:
                MLP.from_npz(data)
            self.assertIn(want, str(cm.exception))
        with self.assertRaises(EncodingError) as cm:
            MLP.from_npz("/nonexistent/model.npz")
        self.assertIn("/nonexistent/model.npz", str(cm.exception))

    def test_batches_the_kernel_refuses(self) -> None:
        m = MLP.from_layers(LAYERS)
        with self.assertRaises(EncodingError) as cm:
            m.check_batch(Int8Matrix.from_rows([[1, 2]]))
        self.assertIn("X is 1x2, the model takes 3 inputs", str(cm.exception))
        wide = MLP.from_layers([([[-128] * 2], [2**31 - 1], 0)])  # encodes, but could overflow int32
        self.assertEqual(MLP.from_omzm(wide.to_omzm()), wide)
        with self.assertRaises(EncodingError) as cm:
            wide.check_batch(Int8Matrix.from_rows([[1, 1]]))
        self.assertIn("layer 0 output 0 can accumulate to ±2147516415, beyond int32", str(cm.exception))

    def test_layer_type(self) -> None:
        with self.assertRaises(TypeError):
            MLP([("not", "a", "layer")])  # type: ignore[list-item]
        layer = MLPLayer.of([[1]], [0], 0)
        self.assertEqual((layer.inputs, layer.outputs), (1, 1))


@unittest.skipIf(np is None, "NumPy is not installed (it is optional)")
class NumpyModelTest(unittest.TestCase):  # pragma: no cover - runs only where NumPy is
    def test_savez_as_the_cli_documents_it(self) -> None:
        w0 = np.array([[1, 2, 3], [4, 5, -6]], dtype=np.int8)
        w1 = np.array([[7, 8]], dtype=np.int8)
        buf = io.BytesIO()
        np.savez(buf, w0=w0, b0=np.array([10, -20]), w1=w1, b1=np.array([1], dtype=np.int32), shifts=[3, 0])
        self.assertEqual(MLP.from_npz(buf.getvalue()), MLP.from_layers(LAYERS))
        self.assertEqual(MLP.from_layers([(w0, np.array([10, -20]), np.int64(3)), (w1, np.array([1]), 0)]), MLP.from_layers(LAYERS))
        with np.load(io.BytesIO(MLP.from_layers(LAYERS).to_npz())) as z:
            self.assertTrue((z["w0"] == w0).all())
            self.assertEqual(z["b0"].tolist(), [10, -20])
            self.assertEqual(z["shifts"].tolist(), [3, 0])
        with self.assertRaises(EncodingError):
            MLP.from_layers([(w0.astype(np.float32), [0, 0], 0)])
        with self.assertRaises(EncodingError):
            MLP.from_layers([(w0, np.array([0.5, 1.0]), 0)])


if __name__ == "__main__":
    unittest.main()
