"""Keys and envelopes for the Logpush tests, made with ``cryptography`` directly (not the provider),
and a record of the provider's RSA operations."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_provider_aigw.logpush.decrypt import LogpushPrivateKey

OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def seal_parts(plaintext: bytes, pair: KeyPair, aes_key: bytes | None = None) -> tuple[bytes, bytes, bytes]:
    """(wrapped key, iv, ciphertext+tag) of ``plaintext`` as Cloudflare seals a field."""
    aes_key = aes_key if aes_key is not None else os.urandom(32)
    iv = os.urandom(12)
    return pair.private.public_key().encrypt(aes_key, OAEP), iv, AESGCM(aes_key).encrypt(iv, plaintext, None)


def seal(plaintext: bytes, pair: KeyPair, aes_key: bytes | None = None) -> dict[str, str]:
    """The full envelope of ``plaintext``."""
    wrapped, iv, data = seal_parts(plaintext, pair, aes_key)
    return {"type": "encrypted", "key": b64(wrapped), "iv": b64(iv), "data": b64(data)}


# 2048 bits: quick to make; the benchmark measures RSA-4096.
@pytest.fixture(scope="session")
def key_pair() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def other_key_pair() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def rsa_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every RSA private operation (LogpushPrivateKey.unwrap) of the test, in order."""
    calls: list[bytes] = []
    unwrap = LogpushPrivateKey.unwrap

    def counting(self: LogpushPrivateKey, wrapped: bytes) -> bytes:
        calls.append(wrapped)
        return unwrap(self, wrapped)

    monkeypatch.setattr(LogpushPrivateKey, "unwrap", counting)
    return calls
