"""Opening the encrypted fields of Logpush records: the private key, the envelopes, the unwrap cache.

Cloudflare seals ``Metadata``, ``RequestBody`` and ``ResponseBody`` of each ``ai_gateway_events``
record with AES-256-GCM under a fresh key, and wraps that key with RSA-OAEP (SHA-256, MGF1-SHA-256)
under the gateway's public key. The envelope forms accepted:

- the full envelope ``{"type": "encrypted", "key": b64, "iv": b64, "data": b64}`` (``data`` is
  the ciphertext followed by the 16-byte tag), as Cloudflare's decryption script reads it;
- the abbreviated ``{"type": "encrypted", "data": b64}`` of the dataset page, whose ``data`` is
  taken to hold either a full envelope as JSON, or the wrapped key (the modulus' length), the
  12-byte IV and the ciphertext with its tag, in that order (both **unverified** guesses);
- either of those as JSON text instead of an object;
- anything else is a plain, unencrypted value and is returned as it is.

The RSA private operation is the whole cost (milliseconds for RSA-4096; AES is microseconds), so
:class:`EnvelopeDecryptor` unwraps each distinct wrapped key once and keeps the AES keys of the
last ``cache_size`` wrapped keys in memory (never on disk): when the three fields of a log share
one key, a log costs one RSA operation instead of three.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayDecryptError
from airflow_provider_aigw.jsoncodec import decode_json

__all__ = ["DEFAULT_CACHE_SIZE", "EnvelopeDecryptor", "LogpushPrivateKey", "is_envelope"]

#: Wrapped keys whose AES key stays in memory (a few hundred bytes each).
DEFAULT_CACHE_SIZE = 4096
ENVELOPE_TYPE = "encrypted"
_GCM_TAG_BYTES = 16
_PACKED_IV_BYTES = 12
_AES_KEY_SIZES = frozenset({16, 24, 32})
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----(.*?)-----END \1-----", re.DOTALL)


def _normalise_pem(text: str) -> bytes:
    """The private key's PEM block with its lines restored.

    A PEM pasted into a one-line field (Airflow's password input drops line breaks) or stored with
    literal ``\\n`` escapes is re-wrapped at 64 characters; a block with headers (legacy encrypted
    PEM) is kept as written, escapes aside.
    """
    text = text.replace("\\n", "\n").strip()
    block = _PEM_BLOCK.search(text)
    if block is None:
        raise AIGatewayConfigError(
            "the Logpush private key is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' block)"
        )
    label, body = block.group(1), block.group(2)
    if ":" in body:
        return (block.group(0) + "\n").encode("ascii", errors="replace")
    body = "".join(body.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode("ascii", "replace")


class LogpushPrivateKey:
    """The RSA private key Logpush fields are encrypted for, held in memory only.

    Its ``repr`` shows the key size and the SHA-256 fingerprint of the public half (the key the
    gateway was given), never key material. One RSA private operation per :meth:`unwrap`.

    :param key: an RSA private key of ``cryptography``.
    """

    __slots__ = ("_key", "_oaep", "fingerprint", "key_bytes", "key_size")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise AIGatewayConfigError(f"the Logpush private key must be an RSA key, got {type(key).__name__}")
        self._key = key
        self._oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        self.key_size: int = key.key_size
        self.key_bytes: int = (key.key_size + 7) // 8
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        #: SHA-256 of the public key (DER SubjectPublicKeyInfo), hex: tells keys apart in messages.
        self.fingerprint: str = hashlib.sha256(spki).hexdigest()

    @classmethod
    def from_pem(cls, pem: str | bytes, passphrase: str | bytes | None = None) -> LogpushPrivateKey:
        """Load a PEM private key (PKCS#8 as Cloudflare's guide makes it, or PKCS#1), encrypted
        ones with their ``passphrase``. Errors say what is wrong, never what the key holds."""
        text = pem.decode("ascii", errors="replace") if isinstance(pem, bytes) else str(pem)
        password = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        if password == b"":
            password = None
        block = _normalise_pem(text)
        try:
            # OpenSSL's validation tests p and q for primality: about 0.24 s for RSA-4096, in every
            # process that loads the key. The key is the user's own (their connection), not an
            # attacker's; what the validation catches in practice, a damaged key, the numbers'
            # consistency below catches in microseconds.
            key = serialization.load_pem_private_key(block, password=password, unsafe_skip_rsa_key_validation=True)
        except TypeError:
            # cryptography raises TypeError for a passphrase missing or given in vain
            if password is None:
                raise AIGatewayConfigError(
                    "the Logpush private key is encrypted: give its passphrase"
                ) from None
            raise AIGatewayConfigError(
                "a passphrase was given but the Logpush private key is not encrypted"
            ) from None
        except ValueError:
            if password is not None:
                raise AIGatewayConfigError(
                    "the Logpush private key does not load: wrong passphrase, or not a valid PEM private key"
                ) from None
            raise AIGatewayConfigError("the Logpush private key does not load: not a valid PEM private key") from None
        except Exception as err:  # e.g. an unsupported algorithm: its type, not its text
            raise AIGatewayConfigError(f"the Logpush private key does not load ({type(err).__name__})") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise AIGatewayConfigError(f"the Logpush private key must be an RSA key, got {type(key).__name__}")
        if not _consistent(key.private_numbers()):
            raise AIGatewayConfigError(
                "the Logpush private key does not load: its numbers are inconsistent (a damaged key)"
            )
        return cls(key)

    def unwrap(self, wrapped: bytes) -> bytes:
        """The AES key sealed in ``wrapped`` (RSA-OAEP-SHA256); raises :class:`ValueError` when
        this key cannot open it."""
        return self._key.decrypt(wrapped, self._oaep)

    def __repr__(self) -> str:
        return f"LogpushPrivateKey(rsa-{self.key_size}, public key sha256 {self.fingerprint[:16]}...)"

    def __reduce__(self) -> Any:
        # A key never travels by pickle (XCom, a task's arguments): workers load it from its PEM.
        raise TypeError("LogpushPrivateKey cannot be pickled; load it from its PEM where it is used")


def _consistent(numbers: rsa.RSAPrivateNumbers) -> bool:
    """Whether the key's numbers fit together: ``n = p q`` with odd ``p`` and ``q``, the CRT
    exponents and coefficient derived from ``d``, ``p`` and ``q``, and ``e d = 1`` modulo ``p - 1``
    and ``q - 1``. Primality is not tested (see :meth:`LogpushPrivateKey.from_pem`)."""
    p, q, d = numbers.p, numbers.q, numbers.d
    e, n = numbers.public_numbers.e, numbers.public_numbers.n
    return (
        p > 2
        and q > 2
        and p % 2 == 1
        and q % 2 == 1
        and p * q == n
        and numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and numbers.iqmp * q % p == 1
        and e * d % (p - 1) == 1
        and e * d % (q - 1) == 1
    )


def is_envelope(value: Any) -> bool:
    """Whether ``value`` is an encrypted envelope: an object whose ``type`` is ``encrypted``, or
    its JSON text."""
    return _envelope(value) is not None


def _b64decode(text: Any, what: str, field: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise AIGatewayDecryptError(
            f"{field}: malformed envelope: '{what}' is {'missing' if text is None else 'not a base64 string'}",
            field=field,
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    standard = text.replace("-", "+").replace("_", "/")  # the URL-safe alphabet, padding optional
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AIGatewayDecryptError(
            f"{field}: malformed envelope: '{what}' is not base64 ({len(text)} characters)", field=field
        ) from None


class EnvelopeDecryptor:
    """Opens envelopes with one private key, unwrapping each distinct wrapped key once.

    The AES keys of the last ``cache_size`` wrapped keys stay in memory (least recently used
    evicted), keyed by the wrapped key; nothing is written anywhere. A wrapped key that does not
    unwrap is remembered too, so it costs one RSA operation however many fields carry it. Not
    thread-safe: one per thread or process.

    The unwrapping may happen in another process: there a decryptor of the same key runs
    :meth:`unwrap_keys` over the :meth:`wrapped_keys` of the fields, and here :meth:`learn` takes
    its answers (AES keys over a pipe, in memory only).

    :param key: the private key.
    :param cache_size: how many wrapped keys to remember (at least 1).
    """

    def __init__(self, key: LogpushPrivateKey, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size!r}")
        self.key = key
        self.cache_size = cache_size
        # wrapped key -> its AES key, or why it does not unwrap
        self._aes: OrderedDict[bytes, bytes | str] = OrderedDict()
        #: RSA private operations done so far (wrapped keys not found in the cache).
        self.unwraps = 0

    def __repr__(self) -> str:
        return f"EnvelopeDecryptor({self.key!r}, cached={len(self._aes)}, unwraps={self.unwraps})"

    def open(self, value: Any, *, field: str) -> Any:
        """The plaintext bytes of an envelope; any other value (plain JSON, null) as it is.

        :param value: the field's value in the record.
        :param field: the field's name, for messages.
        :raises AIGatewayDecryptError: an envelope that does not open (wrong key, altered data,
            truncated or malformed), naming ``field`` and what failed.
        """
        envelope = _envelope(value)
        if envelope is None:
            return value
        if "key" in envelope or "iv" in envelope:
            wrapped = _b64decode(envelope.get("key"), "key", field)
            iv = _b64decode(envelope.get("iv"), "iv", field)
            sealed = _b64decode(envelope.get("data"), "data", field)
        else:
            wrapped, iv, sealed = self._unpack(_b64decode(envelope.get("data"), "data", field), field)
        aes_key = self._aes_key(wrapped)
        if isinstance(aes_key, str):
            raise AIGatewayDecryptError(f"{field}: {aes_key}", field=field)
        if not 8 <= len(iv) <= 128:
            raise AIGatewayDecryptError(f"{field}: malformed envelope: an IV of {len(iv)} bytes", field=field)
        if len(sealed) < _GCM_TAG_BYTES:
            raise AIGatewayDecryptError(
                f"{field}: truncated envelope: {len(sealed)} bytes of data, shorter than the 16-byte GCM tag",
                field=field,
            )
        try:
            return AESGCM(aes_key).decrypt(iv, sealed, None)
        except InvalidTag:
            raise AIGatewayDecryptError(
                f"{field}: the data fails its AES-GCM tag check: the data or IV was altered or truncated",
                field=field,
            ) from None

    def preload(self, values: Iterable[Any]) -> None:
        """Unwrap the wrapped keys of these field values (envelopes or not) back to back.

        RSA operations in a row run faster than each between the parsing of records (the CPU's
        caches stay warm: about 7% of a log's time with RSA-4096 here), so a reader preloads a
        batch of records before opening their fields. Nothing is raised: an envelope that does
        not parse, or a key that does not unwrap, is left to :meth:`open` to report.
        """
        for wrapped in self.wrapped_keys(values):
            self._aes_key(wrapped)

    def wrapped_keys(self, values: Iterable[Any]) -> list[bytes]:
        """The distinct wrapped keys of these field values (envelopes or not), in order. Nothing is
        raised: an envelope that does not parse is left to :meth:`open` to report."""
        found: dict[bytes, None] = {}
        for value in values:
            envelope = _envelope(value)
            if envelope is None:
                continue
            try:
                if "key" in envelope or "iv" in envelope:
                    wrapped = _b64decode(envelope.get("key"), "key", "")
                else:
                    wrapped = self._unpack(_b64decode(envelope.get("data"), "data", ""), "")[0]
            except AIGatewayDecryptError:
                continue
            found[wrapped] = None
        return list(found)

    def unwrap_keys(self, wrapped_keys: Iterable[bytes]) -> list[bytes | str]:
        """The AES key each wrapped key seals, or why it does not unwrap (a message naming no key
        material), through the cache: what :meth:`learn` takes in a decryptor of the same key."""
        return [self._aes_key(wrapped) for wrapped in wrapped_keys]

    def learn(self, wrapped_keys: Sequence[bytes], outcomes: Sequence[bytes | str]) -> None:
        """Cache what :meth:`unwrap_keys` of a decryptor of the same key gave for ``wrapped_keys``,
        as if unwrapped here."""
        for wrapped, outcome in zip(wrapped_keys, outcomes, strict=True):
            self._remember(wrapped, outcome)

    def _unpack(self, packed: bytes, field: str) -> tuple[bytes, bytes, bytes]:
        """Key, IV and sealed data of an abbreviated envelope's ``data``."""
        if packed[:1] == b"{":
            try:
                inner = decode_json(packed)
            except ValueError:
                inner = None
            if type(inner) is dict and ("key" in inner or "iv" in inner):
                return (
                    _b64decode(inner.get("key"), "key", field),
                    _b64decode(inner.get("iv"), "iv", field),
                    _b64decode(inner.get("data"), "data", field),
                )
        size = self.key.key_bytes
        if len(packed) < size + _PACKED_IV_BYTES + _GCM_TAG_BYTES:
            raise AIGatewayDecryptError(
                f"{field}: truncated envelope: its data holds {len(packed)} bytes, less than a wrapped key "
                f"({size} bytes for RSA-{self.key.key_size}), an IV and a GCM tag",
                field=field,
            )
        end_iv = size + _PACKED_IV_BYTES
        return packed[:size], packed[size:end_iv], packed[end_iv:]

    def _aes_key(self, wrapped: bytes) -> bytes | str:
        """The AES key ``wrapped`` seals, or why it does not unwrap: from the cache, else by one
        RSA operation whose outcome the cache keeps."""
        try:
            outcome = self._aes[wrapped]
        except KeyError:
            return self._remember(wrapped, self._unwrap(wrapped))
        self._aes.move_to_end(wrapped)
        return outcome

    def _remember(self, wrapped: bytes, outcome: bytes | str) -> bytes | str:
        self._aes[wrapped] = outcome
        self._aes.move_to_end(wrapped)
        if len(self._aes) > self.cache_size:
            self._aes.popitem(last=False)
        return outcome

    def _unwrap(self, wrapped: bytes) -> bytes | str:
        key = self.key
        if len(wrapped) != key.key_bytes:
            return (
                f"the wrapped AES key is {len(wrapped)} bytes, but RSA-{key.key_size} wraps {key.key_bytes}: "
                "the envelope is truncated, or sealed for another key"
            )
        self.unwraps += 1
        try:
            aes_key = key.unwrap(wrapped)
        except ValueError:
            return (
                "the AES key does not unwrap (RSA-OAEP-SHA256) with the private key whose public key has sha256 "
                f"{key.fingerprint[:16]}...: the logs were encrypted for another key, or the key was altered"
            )
        if len(aes_key) not in _AES_KEY_SIZES:
            return f"the unwrapped key is {len(aes_key)} bytes, not an AES key"
        return aes_key


def _envelope(value: Any) -> dict[str, Any] | None:
    """The envelope ``value`` is (an object, or its JSON text), or None for a plain value."""
    if type(value) is dict:
        return value if value.get("type") == ENVELOPE_TYPE else None
    if isinstance(value, str) and value[:1] == "{" and ENVELOPE_TYPE in value[:200]:
        try:
            parsed = decode_json(value)
        except ValueError:
            return None
        return parsed if type(parsed) is dict and parsed.get("type") == ENVELOPE_TYPE else None
    return None
