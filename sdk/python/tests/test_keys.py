"""Keys, addresses and key files, without a server."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import unittest
from pathlib import Path

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import KeyFileError, SigningKey, address_of, public_key_of
from omnisync.keys import b58decode, b58encode, verify


class Base58Test(unittest.TestCase):
    def test_vectors(self) -> None:
        # Bitcoin-alphabet vectors (mr-tron/base58's tests use the same).
        for raw, text in [
            (b"", ""),
            (b"\0", "1"),
            (b"\0\0\x01", "112"),
            (b"hello world", "StV1DL6CwTryKyV"),
            (bytes.fromhex("00eb15231dfceb60925886b67d065299925915aeb172c06647"), "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"),
        ]:
            with self.subTest(text=text):
                self.assertEqual(b58encode(raw), text)
                self.assertEqual(b58decode(text), raw)
        with self.assertRaises(ValueError):
            b58decode("0OIl")

    def test_address_round_trip(self) -> None:
        k = SigningKey(bytes(32))
        self.assertEqual(k.address, "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS")  # as Go derives it
        self.assertEqual(public_key_of(k.address), k.public_key)
        self.assertEqual(address_of(k.public_key), k.address)
        for bad in ("", "1", "0000"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                public_key_of(bad)

    def test_sign_and_verify(self) -> None:
        k = SigningKey.generate()
        sig = k.sign(b"m")
        self.assertTrue(verify(k.address, b"m", sig))
        self.assertFalse(verify(k.address, b"n", sig))
        self.assertNotIn(k._seed.hex(), repr(k))


class KeyFileTest(unittest.TestCase):
    def test_save_and_load(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            k = SigningKey.generate()
            p = k.save(Path(d) / "wallets" / "me.json")
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)
            self.assertEqual(SigningKey.from_key_file(p).address, k.address)
            with self.assertRaises(FileExistsError):
                k.save(p)

    def test_bad_files(self) -> None:
        good = list(SigningKey(bytes(range(32))).to_solana_json())
        nums = json.loads(bytes(good))
        cases = {
            "not json": b"nope",
            "an object": b"{}",
            "63 bytes": json.dumps(nums[:63]).encode(),
            "a byte of 256": json.dumps(nums[:63] + [256]).encode(),
            "a boolean": json.dumps([True] + nums[1:]).encode(),
            "a float": json.dumps([1.0] + nums[1:]).encode(),
            "a public half not the seed's": json.dumps(nums[:32] + [0] * 32).encode(),
        }
        for name, data in cases.items():
            with self.subTest(name), self.assertRaises(KeyFileError):
                SigningKey.from_solana_json(data)
        with self.assertRaises(KeyFileError):
            SigningKey.from_key_file("/nonexistent/key.json")


if __name__ == "__main__":
    unittest.main()
