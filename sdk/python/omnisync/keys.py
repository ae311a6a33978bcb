"""Identities: ed25519 keys, their base58 addresses, and the wallet key file format.

An address is the base58 (Bitcoin alphabet) encoding of the 32-byte public key, the same
form as a Solana wallet address (``internal/keys``). A key file is a Solana CLI keypair: a
JSON array of the 64 bytes of the 32-byte seed followed by the public key, which must
match the seed (``keys.ParseSolanaJSON``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.exceptions import InvalidSignature

from .errors import KeyFileError

PathLike = Union[str, "os.PathLike[str]"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    """Base58-encode data (Bitcoin alphabet; each leading zero byte becomes a '1')."""
    n = int.from_bytes(data, "big")
    digits = []
    while n:
        n, r = divmod(n, 58)
        digits.append(_B58[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58 text; raises ValueError for a character outside the alphabet."""
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"{text!r} is not base58")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def address_of(public_key: bytes) -> str:
    """Return the account address of a 32-byte ed25519 public key."""
    if len(public_key) != 32:
        raise ValueError(f"an ed25519 public key is 32 bytes, not {len(public_key)}")
    return b58encode(public_key)


def public_key_of(address: str) -> bytes:
    """Return the public key an address names; ValueError if it names none."""
    try:
        raw = b58decode(address)
    except ValueError:
        raise ValueError(f"invalid address {address!r}: not base58") from None
    if len(raw) != 32:
        raise ValueError(f"invalid address {address!r}: decodes to {len(raw)} bytes, want 32")
    return raw


def verify(address: str, message: bytes, signature: bytes) -> bool:
    """Report whether signature is address's key's ed25519 signature of message."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key_of(address)).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


class SigningKey:
    """An ed25519 private key and the account address it controls.

    Signatures are deterministic (RFC 8032), so the same key signs the same bytes the
    same way in Python and in Go.
    """

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyFileError(f"an ed25519 seed is 32 bytes, not {len(seed)}")
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self._seed = bytes(seed)
        self.public_key: bytes = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.address: str = address_of(self.public_key)

    @classmethod
    def generate(cls) -> "SigningKey":
        """Return a new random key."""
        return cls(os.urandom(32))

    @classmethod
    def from_solana_json(cls, data: Union[bytes, str]) -> "SigningKey":
        """Parse a Solana CLI keypair (a JSON array of 64 bytes) and check its halves match."""
        try:
            nums = json.loads(data)
        except ValueError as e:
            raise KeyFileError(f"keypair file is not a JSON array of bytes: {e}") from None
        if not isinstance(nums, list):
            raise KeyFileError("keypair file is not a JSON array of bytes")
        if len(nums) != 64:
            raise KeyFileError(f"keypair has {len(nums)} bytes, want 64")
        for i, n in enumerate(nums):
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 255:
                raise KeyFileError(f"byte {i} is {n!r}, not an integer in 0..255")
        raw = bytes(nums)
        key = cls(raw[:32])
        if key.public_key != raw[32:]:
            raise KeyFileError("public key does not match the seed")
        return key

    @classmethod
    def from_key_file(cls, path: PathLike) -> "SigningKey":
        """Load a Solana CLI keypair file, e.g. ``~/.omnisync/wallets/consumer.json``."""
        p = Path(path).expanduser()
        try:
            data = p.read_bytes()
        except OSError as e:
            raise KeyFileError(f"{p}: {e.strerror or e}") from e
        try:
            return cls.from_solana_json(data)
        except KeyFileError as e:
            raise KeyFileError(f"{p}: {e}") from None

    def to_solana_json(self) -> bytes:
        """Encode the key as Go's ``keys.MarshalSolanaJSON`` does: ``[b0,b1,…]`` and a newline."""
        return ("[" + ",".join(str(b) for b in self._seed + self.public_key) + "]\n").encode("ascii")

    def save(self, path: PathLike, *, overwrite: bool = False) -> Path:
        """Write the key file atomically, readable only by its owner (mode 0600).

        Refuses to replace an existing file unless overwrite is true: a lost key is lost
        money.
        """
        p = Path(path).expanduser()
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it")
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=str(p.parent), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.to_solana_json())
            os.chmod(tmp, 0o600)
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return p

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte ed25519 signature of message."""
        return self._key.sign(bytes(message))

    def __repr__(self) -> str:  # never show the seed
        return f"SigningKey(address={self.address!r})"
