"""Matrices: .npy and OMT1, with and without NumPy."""

from __future__ import annotations

import struct
import tempfile
import unittest
from pathlib import Path

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import EncodingError, Float32Matrix, Int8Matrix, Int32Matrix, as_float32_matrix, as_int8_matrix, matmul
from omnisync.npy import _check_matmul_float32, parse_npy

try:
    import numpy as np
except ImportError:  # NumPy is optional
    np = None


class NpyTest(unittest.TestCase):
    def test_header_is_numpys(self) -> None:
        m = Int8Matrix.from_rows([[1, -2, 3], [4, 5, -128]])
        b = m.to_npy()
        self.assertEqual(b[:10], b"\x93NUMPY\x01\x00" + struct.pack("<H", 118))
        self.assertEqual(len(b) % 64, 6 % 64)  # header padded to 64, then 6 data bytes
        self.assertEqual(b[10:].split(b"\n")[0].rstrip(), b"{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }")
        self.assertEqual(parse_npy(b), ("|i1", False, (2, 3), bytes([1, 254, 3, 4, 5, 128])))
        self.assertEqual(Int8Matrix.from_npy(b), m)

    def test_round_trips(self) -> None:
        m = Int8Matrix.from_rows([[-128, 127], [0, 1], [2, 3]])
        self.assertEqual(Int8Matrix.from_omt(m.to_omt()), m)
        p = Int32Matrix.from_rows([[2**31 - 1, -(2**31)], [0, 7]])
        self.assertEqual(Int32Matrix.from_omt(p.to_omt()), p)
        self.assertEqual(Int32Matrix.from_npy(p.to_npy()), p)
        self.assertEqual(p.tolist(), [[2**31 - 1, -(2**31)], [0, 7]])
        self.assertEqual(p[1, 1], 7)

    def test_refusals(self) -> None:
        m = Int8Matrix.from_rows([[1, 2]])
        cases = {
            "not npy": b"hello world",
            "int32 npy": Int32Matrix.from_rows([[1]]).to_npy(),
            "fortran": m.to_npy().replace(b"'fortran_order': False", b"'fortran_order': True "),
            "truncated": m.to_npy()[:-1],
            "1-D": m.to_npy().replace(b"(1, 2)", b"(2,)  "),
        }
        for name, data in cases.items():
            with self.subTest(name), self.assertRaises(EncodingError):
                Int8Matrix.from_npy(data)
        for bad in ([[1, 2], [3]], [[128]], [[True]]):
            with self.subTest(bad=bad), self.assertRaises(EncodingError):
                Int8Matrix.from_rows(bad)
        with self.assertRaises(EncodingError):
            Int32Matrix.from_omt(m.to_omt())  # int8, not int32
        with self.assertRaises(EncodingError):
            Int8Matrix.from_omt(m.to_omt() + b"\0")

    def test_as_int8_matrix_takes_what_callers_have(self) -> None:
        m = Int8Matrix.from_rows([[1, 2], [3, 4]])
        with tempfile.TemporaryDirectory() as d:
            path = m.save_npy(Path(d) / "m.npy")
            for x in (m, m.to_npy(), m.to_omt(), str(path), path, [[1, 2], [3, 4]]):
                with self.subTest(x=type(x).__name__):
                    self.assertEqual(as_int8_matrix(x), m)
        with self.assertRaises(EncodingError):
            as_int8_matrix("/nonexistent.npy")

    def test_matmul_reference(self) -> None:
        a = Int8Matrix.from_rows([[1, 2, 3], [-4, 5, -128]])
        b = Int8Matrix.from_rows([[7, 8], [9, 10], [11, -128]])
        self.assertEqual(matmul(a, b).tolist(), [[58, -356], [-1391, 16402]])
        with self.assertRaises(EncodingError):
            matmul(a, a)

    @unittest.skipIf(np is None, "NumPy is not installed (it is optional)")
    def test_numpy(self) -> None:  # pragma: no cover - runs only where NumPy is
        a = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
        m = as_int8_matrix(a)
        self.assertEqual(m.tolist(), a.tolist())
        self.assertTrue((m.to_numpy() == a).all())
        self.assertEqual(as_int8_matrix(np.asfortranarray(a.astype(np.int8))), m)
        with self.assertRaises(EncodingError):
            as_int8_matrix(np.array([[300]]))
        self.assertTrue((np.load(__import__("io").BytesIO(Int32Matrix.from_rows([[1, 2]]).to_npy())) == [[1, 2]]).all())


class Float32Test(unittest.TestCase):
    def test_encodings(self) -> None:
        m = Float32Matrix.from_rows([[1.5, -2.0, 0.1], [0.0, -0.0, 3.4028234663852886e38]])
        omt = m.to_omt()
        self.assertEqual(omt[:16], b"OMT1\x03\x00\x00\x00" + struct.pack("<II", 2, 3))
        self.assertEqual(omt[16:20], struct.pack("<f", 1.5))
        self.assertEqual(omt[24:28], bytes.fromhex("cdcccc3d"), "0.1 rounds to the nearest float32")
        self.assertEqual(omt[32:36], b"\x00\x00\x00\x80", "-0.0 keeps its sign bit")
        self.assertEqual(Float32Matrix.from_omt(omt), m)
        npy = m.to_npy()
        self.assertEqual(parse_npy(npy)[:3], ("<f4", False, (2, 3)))
        self.assertEqual(Float32Matrix.from_npy(npy), m)
        self.assertEqual(m.tolist()[0], [1.5, -2.0, struct.unpack("<f", struct.pack("<f", 0.1))[0]])
        big = npy.replace(b"'<f4'", b"'>f4'")[: -4 * 6] + b"".join(struct.pack(">f", v) for row in m.tolist() for v in row)
        self.assertEqual(Float32Matrix.from_npy(big), m)
        self.assertNotEqual(Float32Matrix.from_rows([[0.0]]), Float32Matrix.from_rows([[-0.0]]), "compared bit for bit")

    def test_nan_and_inf_are_refused(self) -> None:
        for bad in (float("nan"), float("inf"), -float("inf"), 1e39, -(10**400)):
            with self.subTest(bad=bad), self.assertRaises(EncodingError) as cm:
                Float32Matrix.from_rows([[1.0, bad]])
            self.assertIn("finite", str(cm.exception))
        nan = b"OMT1\x03\x00\x00\x00" + struct.pack("<II", 1, 2) + struct.pack("<f", 1) + bytes.fromhex("0000c07f")
        with self.assertRaises(EncodingError) as cm:
            Float32Matrix.from_omt(nan)
        self.assertIn("element (0, 1) is nan", str(cm.exception))
        npy = Float32Matrix.from_rows([[1.0, 2.0]]).to_npy()[:-4] + struct.pack("<f", float("inf"))
        with self.assertRaises(EncodingError):
            Float32Matrix.from_npy(npy)

    def test_wrong_dtypes_are_refused(self) -> None:
        m8 = Int8Matrix.from_rows([[1, 2]])
        cases = {
            "int8 npy": m8.to_npy(),
            "int32 npy": Int32Matrix.from_rows([[1]]).to_npy(),
            "float64 npy": Float32Matrix.from_rows([[1.0]]).to_npy().replace(b"'<f4'", b"'<f8'") + bytes(4),
            "int8 OMT1": m8.to_omt(),
        }
        for name, data in cases.items():
            with self.subTest(name), self.assertRaises(EncodingError) as cm:
                as_float32_matrix(data)
            self.assertRegex(str(cm.exception), "float32|dtype")
        with self.assertRaises(EncodingError) as cm:
            as_float32_matrix(m8)
        self.assertIn("Int8Matrix is not a Float32Matrix", str(cm.exception))
        for bad in ([[True]], [["1"]], [[1.0], [2.0, 3.0]]):
            with self.subTest(bad=bad), self.assertRaises(EncodingError):
                Float32Matrix.from_rows(bad)
        with self.assertRaises(EncodingError):
            Int32Matrix.from_omt(Float32Matrix.from_rows([[1.0]]).to_omt())

    def test_as_float32_matrix_takes_what_callers_have(self) -> None:
        m = Float32Matrix.from_rows([[1.0, 2.5], [-3.0, 4.0]])
        with tempfile.TemporaryDirectory() as d:
            path = m.save_npy(Path(d) / "m.npy")
            for x in (m, m.to_npy(), m.to_omt(), str(path), path, [[1, 2.5], [-3, 4]]):
                with self.subTest(x=type(x).__name__):
                    self.assertEqual(as_float32_matrix(x), m)

    def test_matmul_checks_as_go(self) -> None:
        a = Float32Matrix.from_rows([[1.0, 2.0]])
        _check_matmul_float32(a, Float32Matrix.from_rows([[1.0], [2.0]]))
        cases = {
            "cannot multiply": (a, a),
            "subnormal": (a, Float32Matrix.from_rows([[1.0], [1e-40]])),
            "overflow": (Float32Matrix.from_rows([[3e38, 0.0]]), Float32Matrix.from_rows([[1.0], [1.0]])),
        }
        for want, (x, y) in cases.items():
            with self.subTest(want), self.assertRaises(EncodingError) as cm:
                _check_matmul_float32(x, y)
            self.assertIn(want, str(cm.exception))

    @unittest.skipIf(np is None, "NumPy is not installed (it is optional)")
    def test_numpy(self) -> None:  # pragma: no cover - runs only where NumPy is
        a = np.array([[1.5, -2.0], [0.25, 8.0]], dtype=np.float32)
        m = as_float32_matrix(a)
        self.assertEqual(m.tolist(), a.tolist())
        self.assertTrue((m.to_numpy() == a).all())
        self.assertEqual(m.to_numpy().dtype, np.float32)
        self.assertEqual(as_float32_matrix(a.astype(">f4")), m)
        self.assertEqual(as_float32_matrix(np.asfortranarray(a)), m)
        self.assertTrue((np.load(__import__("io").BytesIO(m.to_npy())) == a).all())
        for bad in (a.astype(np.float64), a.astype(np.int32), np.array([[np.nan]], dtype=np.float32), a[0]):
            with self.subTest(dtype=str(bad.dtype)), self.assertRaises(EncodingError):
                as_float32_matrix(bad)


if __name__ == "__main__":
    unittest.main()
