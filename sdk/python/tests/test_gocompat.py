"""The SDK produces the bytes the Go code produces: specs, hashes, transactions, output
requests, key files, matrices; and reads the archives Go writes.

One run of the Go helper tests/gosign does, with the project's own packages, everything
the SDK does here; the test compares the results byte for byte. For float32 matrices and
int8 MLP models it goes both ways: Go decodes the SDK's bytes (and refuses the same broken
ones), Go encodes from plain numbers what the SDK encodes, and the SDK decodes what Go's
kernels write (a float32 product, an MLP trace). The helper decodes each
spec from the SDK's JSON exactly as the REST API does (unknown fields refused), so an
equal re-encoding means the server hashes the spec to the hash the SDK signed.
"""

from __future__ import annotations

import array
import base64
import random
import struct
import tempfile
import unittest
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import support

from omnisync import (
    MLP,
    Client,
    EncodingError,
    Float32Matrix,
    Input,
    Int8Matrix,
    Int32Matrix,
    JobSpec,
    Placement,
    Resources,
    SigningKey,
    SpecError,
    Workload,
    container_spec,
    job_id,
    matmul,
    sign_cancel_job,
    sign_create_job,
    tensor_spec,
    tx_hash,
    unpack_output,
    write_output,
)
from omnisync.signing import job_list_auth_header, output_auth_header, sign_job_list_auth
from omnisync.mlp import MLPTrace
from omnisync.spec import digest_of

SEED = bytes(range(7, 39))
CHAIN_ID = "omni<&>net-é"  # escaped by Go's encoder: the body must match anyway
SEQ = 12345678901234567890  # above 2**63: a uint64 all the way
AUTH_JOB = "job-0123456789abcdef"
AUTH_EXPIRES = 1_900_000_000
TRICKY = 'q"uote\\ <b>&amp;</b> tab\t nl\n cr\r bs\b ff\f ctl\x01\x1f del\x7f é ü 🚀 \u2028\u2029 end'


def _d(b64: Optional[str]) -> bytes:
    return base64.b64decode(b64 or "")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _inputs(*names: str) -> Tuple[Input, ...]:
    return tuple(Input.of(n, n.encode() * 3) for n in names)


def valid_specs() -> List[JobSpec]:
    """Specs the server accepts, covering every field and the encoder's corners."""
    script_dir = Path(tempfile.mkdtemp(prefix="gocompat-script-"))
    (script_dir / "train.py").write_text("print('hi')\n")
    (script_dir / "data.csv").write_text("x,y\n1,2\n")
    client = Client("http://127.0.0.1:9/v1")  # never contacted: container_job builds only
    script_spec, _ = client.container_job(
        "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
        command=["python3", "/inputs/train.py", "--epochs", "3"],
        env={"PYTHONHASHSEED": "0"},
        inputs=[script_dir / "train.py", script_dir / "data.csv"],
        gpus=1,
    )
    return [
        tensor_spec(_inputs("a", "b")),
        tensor_spec(
            _inputs("A.x", "b_2"),
            gpus=2,
            vram_mib=24576,
            budget=2_500_000,
            max_price_per_hour=18446744073709551615,
            timeout_seconds=604800,
            verification="redundant",
            placement=Placement.near(-33.8688, 151.2093, region="ap-southeast", max_latency_ms=4294967295),
        ),
        container_spec(
            "registry.example/ns/img:tag",
            inputs=_inputs("image.tar", "data.bin"),
            command=["sh", "-c", TRICKY],
            env=["HTML=<b>&amp;</b>", "EMPTY=", "UNI=é🚀\u2028", "CTL=\x01\x7f"],
            image_id="sha256:" + "ab" * 32,
            image_archive="image.tar",
            cpu_milli=1500,
            memory_mib=2048,
            placement=Placement(lat_e6=-1, lon_e6=179_999_999),
        ),
        container_spec("busybox", command=[], inputs=()),  # no inputs: "inputs":[]
        script_spec,
        tensor_spec(_inputs("a", "b"), kernel="matmul-fp32"),
        tensor_spec(_inputs("a", "b"), kernel="matmul-fp32", verification="audit"),
        tensor_spec(_inputs("model", "x"), kernel="mlp-int8"),
        tensor_spec(_inputs("model", "x"), kernel="mlp-int8", verification="audit"),
    ]


def _spec(**kw: Any) -> JobSpec:
    base: Dict[str, Any] = dict(
        workload=Workload(kind="tensor", kernel="matmul-int8"),
        inputs=_inputs("a", "b"),
        resources=Resources(gpus=1),
        max_price_per_hour=3_000_000,
        budget=1_000_000,
        timeout_seconds=300,
        verification="freivalds",
    )
    base.update(kw)
    return JobSpec(**base)


def _box(**kw: Any) -> Workload:
    return Workload(kind="container", **{"image": "busybox", **kw})


INVALID = [
    _spec(workload=Workload(kind="")),
    _spec(workload=Workload(kind="vm")),
    _spec(workload=Workload(kind="tensor")),
    _spec(workload=Workload(kind="tensor", kernel="matmul-int8", image="x")),
    _spec(inputs=()),
    _spec(workload=_box(kernel="matmul-int8"), verification="redundant"),
    _spec(workload=Workload(kind="container"), verification="redundant"),
    _spec(workload=_box(image="bad image"), verification="redundant"),
    _spec(workload=_box(image_id="sha256:ABC"), verification="redundant"),
    _spec(workload=_box(image_archive="missing"), verification="redundant"),
    _spec(workload=_box(command=("ok", "nul\x00")), verification="redundant"),
    _spec(workload=_box(command=("x",) * 257), verification="redundant"),
    _spec(workload=_box(env=("NOEQUALS",)), verification="redundant"),
    _spec(workload=_box(env=("=v",)), verification="redundant"),
    _spec(workload=_box(env=("NVIDIA_VISIBLE_DEVICES=all",)), verification="redundant"),
    _spec(workload=_box(env=("A=" + "x" * 4095,)), verification="redundant"),
    _spec(workload=_box(), verification="freivalds"),
    _spec(inputs=_inputs(*[f"i{n}" for n in range(17)])),
    _spec(inputs=_inputs(".hidden", "b")),
    _spec(inputs=_inputs("a/b", "b")),
    _spec(inputs=_inputs("é", "b")),
    _spec(inputs=_inputs("a", "a")),
    _spec(inputs=(Input("a", "sha256:" + "AB" * 32, 3),)),
    _spec(inputs=(Input("a", digest_of(b""), 0),)),
    _spec(inputs=(Input("a", digest_of(b""), (64 << 20) + 1),)),
    _spec(resources=Resources(gpus=0)),
    _spec(resources=Resources(gpus=65)),
    _spec(workload=_box(), resources=Resources(gpus=-1), verification="redundant"),
    _spec(placement=Placement(lat_e6=90_000_001)),
    _spec(placement=Placement(lon_e6=-180_000_001)),
    _spec(max_price_per_hour=0),
    _spec(budget=0),
    _spec(timeout_seconds=0),
    _spec(timeout_seconds=604801),
    _spec(verification="none"),
    _spec(workload=Workload(kind="tensor", kernel="matmul-fp32"), verification="challenge"),
    _spec(workload=Workload(kind="tensor", kernel="matmul-fp32"), verification="redundant"),
    _spec(workload=Workload(kind="tensor", kernel="mlp-int8"), verification="challenge"),
    _spec(workload=Workload(kind="tensor", kernel="mlp-int8"), verification="redundant"),
    _spec(workload=Workload(kind="tensor", kernel="mlp-int8"), inputs=_inputs("model")),
    _spec(workload=Workload(kind="tensor", kernel="mlp-int8"), inputs=_inputs("model", "x", "y"), verification="audit"),
    _spec(verification="zk"),
    _spec(workload=Workload(kind="tensor", kernel="mlp-int8"), inputs=_inputs("model"), verification="zk"),
    _spec(workload=Workload(kind="tensor", kernel="mlp-int8"), inputs=_inputs("model", "x"), verification="zk"),
    _spec(workload=_box(), verification="zk"),
]


def _matrix(rng: random.Random, rows: int, cols: int) -> Int8Matrix:
    return Int8Matrix.from_rows([[rng.randint(-128, 127) for _ in range(cols)] for _ in range(rows)])


def _floats(rng: random.Random, rows: int, cols: int) -> Float32Matrix:
    return Float32Matrix.from_rows([[rng.uniform(-1, 1) for _ in range(cols)] for _ in range(rows)])


def _f32(x: float) -> float:
    return array.array("f", [x])[0]


def matmul_fp32_in_order(a: Float32Matrix, b: Float32Matrix) -> Float32Matrix:
    """tensor.MatMulFloat32: each product and each running sum rounded to float32, in k
    order. A float32 product is exact in a double, and a sum of two float32s rounded to
    double then to float32 is the float32 sum, so this gives Go's bits."""
    out = []
    for i in range(a.rows):
        row = []
        for j in range(b.cols):
            s = 0.0
            for k in range(a.cols):
                s = _f32(s + _f32(a[i, k] * b[k, j]))
            row.append(s)
        out.append(row)
    return Float32Matrix.from_rows(out)


def _model(rng: random.Random, dims: List[int], shifts: List[int], bias: int = 1000) -> MLP:
    return MLP.from_layers(
        [
            (
                [[rng.randint(-128, 127) for _ in range(dims[i])] for _ in range(dims[i + 1])],
                [rng.randint(-bias, bias) for _ in range(dims[i + 1])],
                shifts[i],
            )
            for i in range(len(dims) - 1)
        ]
    )


def _layers_json(m: MLP) -> List[Dict[str, Any]]:
    return [
        {"in": l.inputs, "out": l.outputs, "shift": l.shift, "weights": list(l.weights.data), "biases": list(l.biases)}
        for l in m.layers
    ]


def _raw_model(shapes: List[Tuple[int, int, int]], extra: bytes = b"", layers: Optional[int] = None) -> bytes:
    """An OMZM blob built by hand, parameters zero: to feed both decoders broken models."""
    head = b"OMZM\x01" + bytes([len(shapes) if layers is None else layers])
    head += b"".join(struct.pack(">IIB", i, o, s) for i, o, s in shapes)
    return head + bytes(sum(i * o + 4 * o for i, o, _ in shapes)) + extra


def _omt_f32(rows: int, cols: int, words: List[int], dtype: int = 3) -> bytes:
    return b"OMT1" + bytes([dtype, 0, 0, 0]) + struct.pack("<II", rows, cols) + struct.pack(f"<{len(words)}I", *words)


# Blobs both decoders must refuse, each with why.
BROKEN_FLOAT32 = {
    "NaN": _omt_f32(1, 2, [0x3F800000, 0x7FC00000]),
    "a NaN with a payload": _omt_f32(1, 1, [0xFF800001]),
    "+Inf": _omt_f32(2, 1, [0, 0x7F800000]),
    "-Inf": _omt_f32(1, 1, [0xFF800000]),
    "int8 dtype": _omt_f32(1, 4, [0], dtype=1),
    "trailing byte": _omt_f32(1, 1, [0]) + b"\0",
    "zero rows": _omt_f32(0, 1, []),
}
BROKEN_MODELS = {
    "shift 32": _raw_model([(3, 2, 32)]),
    "layers that do not chain": _raw_model([(3, 2, 1), (3, 1, 1)]),
    "no layers": _raw_model([]),
    "17 layers": _raw_model([(1, 1, 0)] * 17),
    "a layer of 0 inputs": _raw_model([(0, 2, 0)]),
    "a layer of 4097 outputs": _raw_model([(1, 4097, 0)]),
    "a trailing byte": _raw_model([(3, 2, 1)], extra=b"\0"),
    "a missing byte": _raw_model([(3, 2, 1)])[:-1],
    "more layers than shapes": _raw_model([(3, 2, 1)], layers=2),
    "version 2": b"OMZM\x02" + _raw_model([(3, 2, 1)])[5:],
}


@unittest.skipUnless(support.have_go(), "needs the Go toolchain")
class GoCompatTest(unittest.TestCase):
    """Everything the Go helper computed, compared with the SDK's own result."""

    go: Dict[str, Any]

    @classmethod
    def setUpClass(cls) -> None:
        rng = random.Random(42)
        cls.key = SigningKey(SEED)
        cls.specs = valid_specs()
        cls.npys = [_matrix(rng, 1, 1), _matrix(rng, 3, 70), _matrix(rng, 17, 5), _matrix(rng, 128, 128)]
        cls.a, cls.b = _matrix(rng, 9, 13), _matrix(rng, 13, 6)
        cls.archive_files = {"model.pt": bytes(range(256)) * 4, "logs/run 1/é.txt": "héllo\n".encode(), "empty": b""}
        cls.floats = [
            _floats(rng, 1, 1),
            _floats(rng, 4, 7),
            Float32Matrix.from_rows([[0.1, -0.0, 2.0**-126, 1e-45], [3.4028234663852886e38, -3.4028234663852886e38, 1, -1]]),
        ]
        cls.fa, cls.fb = _floats(rng, 9, 13), _floats(rng, 13, 6)
        cls.random_floats = [(1, 1, 0), (3, 5, 7), (64, 33, 12345)]
        cls.models = [
            _model(rng, [1, 1], [0]),
            _model(rng, [13, 8, 4], [5, 3]),
            _model(rng, [6, 5, 7, 3], [31, 0, 9], bias=2**31 - 1),  # encodes; too wide a bias to run
            MLP.from_layers([([[-128, 127]], [-(2**31)], 0), ([[1]], [2**31 - 1], 31)]),
        ]
        cls.runs = [(cls.models[1], _matrix(rng, 16, 13)), (cls.models[0], _matrix(rng, 3, 1))]
        cls.go = support.run_gosign(
            {
                "seed": base64.b64encode(SEED).decode(),
                "chain_id": CHAIN_ID,
                "seq": SEQ,
                "specs": [base64.b64encode(s.to_json()).decode() for s in cls.specs + INVALID],
                "cancel_job_id": AUTH_JOB,
                "auth_job_id": AUTH_JOB,
                "auth_expires": AUTH_EXPIRES,
                "npy_int8": [base64.b64encode(m.to_npy()).decode() for m in cls.npys],
                "matmul": [base64.b64encode(cls.a.to_omt()).decode(), base64.b64encode(cls.b.to_omt()).decode()],
                "archive": {
                    "exit_code": 3,
                    "files": [{"path": p, "data": base64.b64encode(d).decode()} for p, d in cls.archive_files.items()],
                },
                "float32_npy": [_b64(m.to_npy()) for m in cls.floats],
                "float32_omt": [_b64(m.to_omt()) for m in cls.floats] + [_b64(b) for b in BROKEN_FLOAT32.values()],
                "float32_random": [{"rows": r, "cols": c, "seed": seed} for r, c, seed in cls.random_floats],
                "matmul_fp32": [_b64(cls.fa.to_omt()), _b64(cls.fb.to_omt())],
                "models": [_b64(m.to_omzm()) for m in cls.models] + [_b64(b) for b in BROKEN_MODELS.values()],
                "model_layers": [_layers_json(m) for m in cls.models],
                "mlp_run": [[_b64(m.to_omzm()), _b64(x.to_omt())] for m, x in cls.runs],
            }
        )

    def test_address_key_file_and_job_id(self) -> None:
        self.assertEqual(self.key.address, self.go["address"])
        self.assertEqual(self.key.to_solana_json().decode(), self.go["key_file"])
        self.assertEqual(SigningKey.from_solana_json(self.go["key_file"]).address, self.go["address"])
        self.assertEqual(job_id(self.key.address, SEQ), self.go["job_id"])

    def test_spec_json_and_hash_match_go(self) -> None:
        for i, spec in enumerate(self.specs):
            with self.subTest(spec=i):
                g = self.go["specs"][i]
                self.assertEqual(g.get("decode_error", ""), "")
                self.assertEqual(spec.to_json(), _d(g["json"]))
                self.assertEqual(spec.hash(), g["hash"])
                self.assertEqual(g["invalid_field"], "")

    def test_create_job_tx_matches_go(self) -> None:
        for i, spec in enumerate(self.specs):
            with self.subTest(spec=i):
                tx = sign_create_job(self.key, CHAIN_ID, SEQ, spec)
                self.assertEqual(tx, _d(self.go["specs"][i]["create_job_tx"]))
                self.assertEqual(tx_hash(tx), self.go["specs"][i]["create_job_hash"])

    def test_cancel_job_tx_matches_go(self) -> None:
        self.assertEqual(sign_cancel_job(self.key, CHAIN_ID, SEQ, AUTH_JOB), _d(self.go["cancel_job_tx"]))

    def test_output_auth_header_matches_go(self) -> None:
        self.assertEqual(output_auth_header(self.key, AUTH_JOB, AUTH_EXPIRES), self.go["output_auth"])

    def test_job_list_auth_header_matches_go(self) -> None:
        self.assertEqual(job_list_auth_header(self.key, AUTH_EXPIRES), self.go["job_list_auth"])
        self.assertEqual(sign_job_list_auth(self.key, 60, now=AUTH_EXPIRES - 60), self.go["job_list_auth"])
        self.assertNotEqual(self.go["job_list_auth"], self.go["output_auth"])

    def test_validation_names_the_field_go_names(self) -> None:
        results = self.go["specs"][len(self.specs) :]
        for spec, g in zip(INVALID, results):
            with self.subTest(spec=spec):
                self.assertEqual(g.get("decode_error", ""), "")
                self.assertNotEqual(g["invalid_field"], "", "Go accepted a spec the test thinks invalid")
                with self.assertRaises(SpecError) as cm:
                    spec.validate()
                self.assertEqual(cm.exception.field, g["invalid_field"], str(cm.exception))
                self.assertEqual(spec.to_json(), _d(g["json"]), "even an invalid spec encodes as Go's")

    def test_npy_reads_and_writes_as_go(self) -> None:
        for m, g in zip(self.npys, self.go["npy_int8"]):
            with self.subTest(shape=m.shape):
                self.assertEqual(g.get("error", ""), "")
                self.assertEqual(m.to_omt(), _d(g["omt"]))
                self.assertEqual(m.to_npy(), _d(g["npy"]))
                self.assertEqual(Int8Matrix.from_npy(_d(g["npy"])), m)

    def test_matmul_output_decodes_as_go_encodes(self) -> None:
        out = Int32Matrix.from_omt(_d(self.go["matmul_omt"]))
        self.assertEqual(out, matmul(self.a, self.b))
        self.assertEqual(out.to_npy(), _d(self.go["matmul_npy"]))
        self.assertEqual(out.to_omt(), _d(self.go["matmul_omt"]))

    def test_float32_matrices_encode_as_go(self) -> None:
        for m, g in zip(self.floats, self.go["float32_npy"]):
            with self.subTest(shape=m.shape):
                self.assertEqual(g.get("error", ""), "")
                self.assertEqual(m.to_omt(), _d(g["omt"]), "Go parsed the SDK's .npy to other OMT1 bytes")
                self.assertEqual(m.to_npy(), _d(g["npy"]))
                self.assertEqual(Float32Matrix.from_npy(_d(g["npy"])), m)
        for m, g in zip(self.floats, self.go["float32_omt"]):
            with self.subTest(shape=m.shape):
                self.assertEqual(g.get("error", ""), "")
                self.assertEqual(_d(g["bytes"]), m.to_omt())

    def test_float32_refusals_agree_with_go(self) -> None:
        results = self.go["float32_omt"][len(self.floats) :]
        for (why, blob), g in zip(BROKEN_FLOAT32.items(), results):
            with self.subTest(why):
                self.assertNotEqual(g.get("error", ""), "", "Go decoded a blob the test thinks broken")
                with self.assertRaises(EncodingError):
                    Float32Matrix.from_omt(blob)

    def test_float32_matrices_go_draws_decode(self) -> None:
        for (rows, cols, _), b in zip(self.random_floats, self.go["float32_random"]):
            with self.subTest(shape=(rows, cols)):
                m = Float32Matrix.from_omt(_d(b))
                self.assertEqual(m.shape, (rows, cols))
                self.assertEqual(m.to_omt(), _d(b))
                self.assertTrue(all(-1 <= v < 1 for v in m.data))

    def test_matmul_fp32_output_decodes_as_go_encodes(self) -> None:
        out = Float32Matrix.from_omt(_d(self.go["matmul_fp32"]))
        self.assertEqual(out, matmul_fp32_in_order(self.fa, self.fb))
        self.assertEqual(out.to_omt(), _d(self.go["matmul_fp32"]))

    def test_models_encode_as_go(self) -> None:
        for m, dec, enc in zip(self.models, self.go["models"], self.go["model_layers"]):
            with self.subTest(model=m.shape_id):
                self.assertEqual(dec.get("error", ""), "")
                self.assertEqual(dec["shape"], m.shape_id)
                self.assertEqual(_d(dec["bytes"]), m.to_omzm(), "Go decoded the SDK's model to another")
                self.assertEqual(enc.get("error", ""), "")
                self.assertEqual(_d(enc["bytes"]), m.to_omzm(), "Go encodes these layers to other bytes")
                self.assertEqual(MLP.from_omzm(_d(enc["bytes"])), m)

    def test_model_refusals_agree_with_go(self) -> None:
        results = self.go["models"][len(self.models) :]
        for (why, blob), g in zip(BROKEN_MODELS.items(), results):
            with self.subTest(why):
                self.assertNotEqual(g.get("error", ""), "", "Go decoded a model the test thinks broken")
                with self.assertRaises(EncodingError):
                    MLP.from_omzm(blob)

    def test_mlp_trace_decodes_as_go_encodes(self) -> None:
        for (m, x), b in zip(self.runs, self.go["mlp_run"]):
            with self.subTest(model=m.shape_id, rows=x.rows):
                got = MLPTrace.from_omlt(_d(b))
                want = m.trace(x)
                self.assertEqual(got.output, want.output)
                self.assertEqual(got.accumulators, want.accumulators)
                self.assertEqual(got.output, m.forward(x))

    def test_archive_written_by_go_unpacks(self) -> None:
        out = unpack_output(_d(self.go["archive"]))
        self.assertEqual(out.exit_code, 3)
        self.assertEqual(out.as_dict(), self.archive_files)
        self.assertEqual([f.path for f in out.files], sorted(self.archive_files, key=str.encode))
        with tempfile.TemporaryDirectory() as d:
            write_output(d, out)
            self.assertEqual((Path(d) / "exit_code").read_text(), "3\n")
            for p, data in self.archive_files.items():
                self.assertEqual((Path(d) / "outputs" / p).read_bytes(), data)


if __name__ == "__main__":
    unittest.main()
