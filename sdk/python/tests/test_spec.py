"""Specs, amounts and the Go-compatible JSON encoder, without a server."""

from __future__ import annotations

import unittest
from decimal import Decimal

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import Input, JobSpec, Placement, SpecError, Workload, container_spec, format_omni, omni, tensor_spec
from omnisync import _gojson
from omnisync.spec import digest_of, env_list


class GoJSONTest(unittest.TestCase):
    def test_strings_escape_as_go(self) -> None:
        # Expected bytes are what Go 1.26's json.Marshal writes (checked against Go in
        # test_gocompat too).
        cases = {
            "a<b>&c": '"a\\u003cb\\u003e\\u0026c"',
            '"\\': '"\\"\\\\"',
            "\b\f\n\r\t": '"\\b\\f\\n\\r\\t"',
            "\x00\x01\x1f\x7f": '"\\u0000\\u0001\\u001f\x7f"',
            "é 🚀": '"é 🚀"',
            "\u2028\u2029": '"\\u2028\\u2029"',
        }
        for s, want in cases.items():
            with self.subTest(s=s):
                self.assertEqual(_gojson.dumps(s), want.encode("utf-8"))

    def test_lone_surrogate_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            _gojson.dumps("\ud800")

    def test_values(self) -> None:
        self.assertEqual(
            _gojson.dumps({"b": [1, True, None], "a": b"\x00\x01\x02\xfa", "c": {}}),
            b'{"b":[1,true,null],"a":"AAEC+g==","c":{}}',
        )
        self.assertEqual(_gojson.dumps(_gojson.go_map({"b": 1, "a": 2, "É": 3, "Z": 4})), b'{"Z":4,"a":2,"b":1,"\xc3\x89":3}')
        with self.assertRaises(TypeError):
            _gojson.dumps(1.5)


class SpecTest(unittest.TestCase):
    def test_tensor_spec_defaults_are_the_clis(self) -> None:
        s = tensor_spec([Input.of("a", b"x"), Input.of("b", b"y")])
        self.assertEqual(s.budget, 1_000_000)
        self.assertEqual(s.max_price_per_hour, 3_000_000)
        self.assertEqual(s.timeout_seconds, 300)
        self.assertEqual(s.verification, "freivalds")
        self.assertTrue(s.to_json().startswith(b'{"workload":{"kind":"tensor","kernel":"matmul-int8"},"inputs":[{"name":"a"'))
        self.assertIn(b'"resources":{"gpus":1,"vram_mib":0},"placement":{},', s.to_json())
        self.assertEqual(s.hash(), digest_of(s.to_json()))

    def test_container_spec_is_redundant_and_may_have_no_gpu(self) -> None:
        s = container_spec("busybox", command=["echo", "hi"], env={"A": "1"})
        self.assertEqual(s.verification, "redundant")
        self.assertEqual(s.resources.gpus, 0)
        self.assertIn(b'"workload":{"kind":"container","image":"busybox","command":["echo","hi"],"env":["A=1"]}', s.to_json())
        self.assertIn(b'"inputs":[]', s.to_json())

    def test_validation_refuses_before_signing(self) -> None:
        with self.assertRaises(SpecError) as cm:
            container_spec("busybox", env={"NVIDIA_DRIVER_CAPABILITIES": "all"})
        self.assertEqual(cm.exception.field, "workload.env[0]")
        with self.assertRaises(SpecError) as cm:
            tensor_spec([Input.of("a", b"x")], budget=-1)
        self.assertEqual(cm.exception.field, "budget")
        with self.assertRaises(SpecError) as cm:
            JobSpec(workload=Workload(kind="tensor", kernel="k", env=("A=\ud800",))).validate()
        self.assertEqual(cm.exception.field, "workload.env[0]")
        with self.assertRaises(TypeError):
            container_spec("busybox", command="echo hi")  # type: ignore[arg-type]

    def test_levels_as_go_validates_them(self) -> None:
        a = [Input.of("a", b"x"), Input.of("b", b"y")]
        for level in ("freivalds", "challenge", "audit", "redundant"):
            self.assertEqual(tensor_spec(a, verification=level).verification, level)
        for level in ("freivalds", "challenge"):
            with self.assertRaises(SpecError) as cm:
                container_spec("busybox", verification=level)
            self.assertIn("matrix products only", str(cm.exception))
        self.assertEqual(container_spec("busybox", verification="audit").verification, "audit")
        with self.assertRaises(SpecError) as cm:
            tensor_spec(a, verification="zk")
        self.assertEqual(cm.exception.field, "verification")

    def test_kernel_levels_as_go_validates_them(self) -> None:
        a = [Input.of("a", b"x"), Input.of("b", b"y")]
        m = [Input.of("model", b"m"), Input.of("x", b"x")]
        for level in ("freivalds", "audit"):
            self.assertEqual(tensor_spec(a, kernel="matmul-fp32", verification=level).verification, level)
            self.assertEqual(tensor_spec(m, kernel="mlp-int8", verification=level).verification, level)
        refused = {
            ("matmul-fp32", "challenge"): ("verification", "hides exact int8 rows"),
            ("matmul-fp32", "redundant"): ("verification", "bit for bit"),
            ("mlp-int8", "challenge"): ("verification", "layer by layer"),
            ("mlp-int8", "redundant"): ("verification", "layer by layer"),
            ("mlp-int8", "zk"): ("zk", "Poseidon2 over BN254"),
            ("matmul-int8", "zk"): ("verification", "proves the mlp-int8 kernel only"),
        }
        for (kernel, level), (field, words) in refused.items():
            with self.subTest(kernel=kernel, level=level), self.assertRaises(SpecError) as cm:
                tensor_spec(m, kernel=kernel, verification=level)
            self.assertEqual(cm.exception.field, field)
            self.assertIn(words, str(cm.exception))
        for level in ("freivalds", "zk"):
            with self.subTest(level=level), self.assertRaises(SpecError) as cm:
                tensor_spec(m[:1], kernel="mlp-int8", verification=level)
            self.assertEqual(cm.exception.field, "inputs")
            self.assertIn("takes 2 inputs [model, ", str(cm.exception))

    def test_placement_near_rounds_to_millionths(self) -> None:
        p = Placement.near(52.52, 13.40, max_latency_ms=80)
        self.assertEqual((p.lat_e6, p.lon_e6, p.max_latency_ms), (52_520_000, 13_400_000, 80))
        with self.assertRaises(SpecError):
            Placement.near(91, 0)

    def test_env_list(self) -> None:
        self.assertEqual(env_list({"B": "2", "A": "1"}), ("B=2", "A=1"))
        self.assertEqual(env_list(["X=1"]), ("X=1",))
        with self.assertRaises(TypeError):
            env_list("X=1")  # type: ignore[arg-type]


class AmountTest(unittest.TestCase):
    def test_omni(self) -> None:
        self.assertEqual(omni("1"), 1_000_000)
        self.assertEqual(omni("0.000001"), 1)
        self.assertEqual(omni(Decimal("2.5")), 2_500_000)
        self.assertEqual(omni(3), 3_000_000)
        for bad in ("0.0000001", "-1", "abc", "NaN", "inf"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                omni(bad)
        with self.assertRaises(TypeError):
            omni(0.1)  # type: ignore[arg-type]

    def test_format_omni(self) -> None:
        self.assertEqual(format_omni(1_500_000), "1.5")
        self.assertEqual(format_omni(620), "0.00062")
        self.assertEqual(format_omni(2_000_000), "2")


if __name__ == "__main__":
    unittest.main()
