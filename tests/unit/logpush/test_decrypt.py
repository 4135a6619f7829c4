"""Decrypting Logpush envelopes: known plaintexts sealed with ``cryptography`` directly, every
envelope form, the refusals (wrong key, flipped bit, truncation) and the unwrap cache."""

from __future__ import annotations

import base64
import json
import pickle
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayDecryptError
from airflow_provider_aigw.logpush.decrypt import EnvelopeDecryptor, LogpushPrivateKey
from tests.unit.logpush.conftest import KeyPair, b64, seal, seal_parts

PLAINTEXT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Où est la gare ?"}]}).encode()


@pytest.fixture
def decryptor(key_pair: KeyPair) -> EnvelopeDecryptor:
    return EnvelopeDecryptor(LogpushPrivateKey(key_pair.private))


def flip(text: str, byte: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[byte] ^= 0x01
    return b64(bytes(raw))


def secrets_of(pair: KeyPair, envelope: dict[str, str]) -> list[str]:
    """Texts no message may quote: the PEM's lines, the envelope's values, the plaintext."""
    pem_lines = [line for line in pair.private_pem.decode().splitlines() if "-----" not in line]
    return [*pem_lines, envelope["key"][:24], envelope["data"][:24], "gare"]


# --- the envelope forms ----------------------------------------------------------------------


def test_full_envelope_gives_the_plaintext(decryptor: EnvelopeDecryptor, key_pair: KeyPair) -> None:
    assert decryptor.open(seal(PLAINTEXT, key_pair), field="RequestBody") == PLAINTEXT


def test_abbreviated_envelope_with_key_iv_and_data_packed_in_data(
    decryptor: EnvelopeDecryptor, key_pair: KeyPair
) -> None:
    wrapped, iv, data = seal_parts(PLAINTEXT, key_pair)
    envelope = {"type": "encrypted", "data": b64(wrapped + iv + data)}
    assert decryptor.open(envelope, field="RequestBody") == PLAINTEXT


def test_abbreviated_envelope_with_a_full_envelope_as_json_in_data(
    decryptor: EnvelopeDecryptor, key_pair: KeyPair
) -> None:
    inner = json.dumps(seal(PLAINTEXT, key_pair)).encode()
    assert decryptor.open({"type": "encrypted", "data": b64(inner)}, field="Metadata") == PLAINTEXT


def test_envelope_given_as_json_text(decryptor: EnvelopeDecryptor, key_pair: KeyPair) -> None:
    assert decryptor.open(json.dumps(seal(PLAINTEXT, key_pair)), field="ResponseBody") == PLAINTEXT


def test_url_safe_base64_without_padding(decryptor: EnvelopeDecryptor, key_pair: KeyPair) -> None:
    envelope = seal(b"\xfb\xff" * 40, key_pair)
    urlsafe = {k: v.replace("+", "-").replace("/", "_").rstrip("=") for k, v in envelope.items()}
    assert decryptor.open(urlsafe, field="RequestBody") == b"\xfb\xff" * 40


@pytest.mark.parametrize(
    "plain",
    [
        None,
        {"team": "search"},
        {"type": "text", "data": "not an envelope"},
        {"key": "k", "iv": "i", "data": "d"},  # user metadata that looks like one, without the type
        "plain text",
        '{"model": "gpt-4o"}',
        [1, 2],
        42,
    ],
)
def test_plain_values_pass_through_unchanged(decryptor: EnvelopeDecryptor, plain: object) -> None:
    assert decryptor.open(plain, field="Metadata") == plain
    assert decryptor.unwraps == 0


# --- refusals --------------------------------------------------------------------------------


def refused(decryptor: EnvelopeDecryptor, envelope: object, field: str = "RequestBody") -> AIGatewayDecryptError:
    with pytest.raises(AIGatewayDecryptError) as info:
        decryptor.open(envelope, field=field)
    assert info.value.field == field and str(info.value).startswith(f"{field}: ")
    return info.value


def test_wrong_key_is_refused_naming_the_key_not_quoting_it(key_pair: KeyPair, other_key_pair: KeyPair) -> None:
    envelope = seal(PLAINTEXT, other_key_pair)
    key = LogpushPrivateKey(key_pair.private)
    error = refused(EnvelopeDecryptor(key), envelope)
    assert "does not unwrap" in str(error) and "another key" in str(error)
    assert key.fingerprint[:16] in str(error)
    for secret in secrets_of(key_pair, envelope) + secrets_of(other_key_pair, envelope):
        assert secret not in str(error)


@pytest.mark.parametrize("byte", [0, 17, -1])
def test_a_flipped_bit_in_the_data_fails_the_tag_check(
    decryptor: EnvelopeDecryptor, key_pair: KeyPair, byte: int
) -> None:
    envelope = seal(PLAINTEXT, key_pair)
    envelope["data"] = flip(envelope["data"], byte)  # last byte: in the tag itself
    error = refused(decryptor, envelope)
    assert "tag check" in str(error)
    for secret in secrets_of(key_pair, envelope):
        assert secret not in str(error)


def test_a_flipped_bit_in_the_iv_fails_the_tag_check(decryptor: EnvelopeDecryptor, key_pair: KeyPair) -> None:
    envelope = seal(PLAINTEXT, key_pair)
    envelope["iv"] = flip(envelope["iv"], 3)
    assert "tag check" in str(refused(decryptor, envelope))


def test_a_flipped_bit_in_the_wrapped_key_does_not_unwrap(decryptor: EnvelopeDecryptor, key_pair: KeyPair) -> None:
    envelope = seal(PLAINTEXT, key_pair)
    envelope["key"] = flip(envelope["key"], 100)
    assert "does not unwrap" in str(refused(decryptor, envelope))


def truncated_b64(text: str, keep: int) -> str:
    return b64(base64.b64decode(text)[:keep])


@pytest.mark.parametrize(
    ("cut", "says"),
    [
        (lambda e: {**e, "data": truncated_b64(e["data"], 10)}, "shorter than the 16-byte GCM tag"),
        (lambda e: {**e, "data": truncated_b64(e["data"], 40)}, "tag check"),
        (lambda e: {**e, "key": truncated_b64(e["key"], 200)}, "the wrapped AES key is 200 bytes"),
        (lambda e: {k: v for k, v in e.items() if k != "iv"}, "'iv' is missing"),
        (lambda e: {k: v for k, v in e.items() if k != "data"}, "'data' is missing"),
        (lambda e: {**e, "key": e["key"][:-7] + "!!!"}, "'key' is not base64"),
        (lambda e: {**e, "iv": b64(b"1234")}, "an IV of 4 bytes"),
    ],
    ids=["data-shorter-than-tag", "data-cut", "key-cut", "no-iv", "no-data", "key-not-base64", "short-iv"],
)
def test_truncated_or_malformed_envelopes_are_refused(
    decryptor: EnvelopeDecryptor, key_pair: KeyPair, cut: object, says: str
) -> None:
    envelope = cut(seal(PLAINTEXT, key_pair))  # type: ignore[operator]
    error = refused(decryptor, envelope)
    assert says in str(error)
    for secret in secrets_of(key_pair, seal(PLAINTEXT, key_pair)):
        assert secret not in str(error)


def test_truncated_abbreviated_envelope_is_refused(decryptor: EnvelopeDecryptor, key_pair: KeyPair) -> None:
    wrapped, iv, data = seal_parts(PLAINTEXT, key_pair)
    error = refused(decryptor, {"type": "encrypted", "data": b64((wrapped + iv + data)[:270])})
    assert "truncated envelope: its data holds 270 bytes" in str(error)


# --- the unwrap cache ------------------------------------------------------------------------


def test_each_distinct_wrapped_key_is_unwrapped_exactly_once(
    decryptor: EnvelopeDecryptor, key_pair: KeyPair, rsa_calls: list[bytes]
) -> None:
    shared = [
        [seal(f"log {i} field {f}".encode(), key_pair, aes_key=bytes([i]) * 32) for f in range(3)] for i in range(4)
    ]
    # one AES key per log, wrapped once and used by its 3 fields: the same wrapped text in each
    for fields in shared:
        fields[1]["key"] = fields[2]["key"] = fields[0]["key"]
    own = [seal(f"own {i}".encode(), key_pair) for i in range(5)]
    for _ in range(2):  # a second pass over the same envelopes costs no RSA operation
        for i, fields in enumerate(shared):
            assert [decryptor.open(e, field="RequestBody") for e in fields] == [
                f"log {i} field {f}".encode() for f in range(3)
            ]
        for i, envelope in enumerate(own):
            assert decryptor.open(envelope, field="RequestBody") == f"own {i}".encode()
    distinct = {base64.b64decode(f[0]["key"]) for f in shared} | {base64.b64decode(e["key"]) for e in own}
    assert len(rsa_calls) == len(distinct) == 9 and set(rsa_calls) == distinct
    assert decryptor.unwraps == 9


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(
    key_pair: KeyPair, rsa_calls: list[bytes]
) -> None:
    decryptor = EnvelopeDecryptor(LogpushPrivateKey(key_pair.private), cache_size=2)
    a, b, c = (seal(name.encode(), key_pair) for name in "abc")
    for envelope in (a, b, a, c, a, b):
        decryptor.open(envelope, field="Metadata")
    # a, b miss; a hits (now the most recent); c misses and evicts b; a hits; b misses again
    assert [base64.b64encode(w).decode() for w in rsa_calls] == [a["key"], b["key"], c["key"], b["key"]]


def test_a_key_that_does_not_unwrap_is_remembered_too(
    decryptor: EnvelopeDecryptor, other_key_pair: KeyPair, rsa_calls: list[bytes]
) -> None:
    envelope = seal(PLAINTEXT, other_key_pair)
    errors = []
    for field in ("Metadata", "RequestBody"):
        with pytest.raises(AIGatewayDecryptError, match="does not unwrap") as info:
            decryptor.open({**envelope}, field=field)
        errors.append(str(info.value))
    assert len(rsa_calls) == 1
    assert errors[0].startswith("Metadata: ") and errors[1].startswith("RequestBody: ")


def test_preload_unwraps_a_batch_back_to_back_then_open_costs_no_rsa(
    decryptor: EnvelopeDecryptor, key_pair: KeyPair, other_key_pair: KeyPair, rsa_calls: list[bytes]
) -> None:
    good = [seal(f"log {i}".encode(), key_pair) for i in range(3)]
    wrapped, iv, data = seal_parts(b"packed", key_pair)
    packed = {"type": "encrypted", "data": b64(wrapped + iv + data)}
    foreign = seal(b"foreign", other_key_pair)
    malformed = {"type": "encrypted", "key": "not base64!", "iv": "", "data": ""}
    decryptor.preload([*good, good[0], packed, json.dumps(good[1]), foreign, malformed, None, {"team": "a"}, "text"])
    assert len(rsa_calls) == 5  # 3 + packed + foreign; repeats, plain values and the malformed one: none
    assert [decryptor.open(e, field="RequestBody") for e in good] == [b"log 0", b"log 1", b"log 2"]
    assert decryptor.open(packed, field="RequestBody") == b"packed"
    with pytest.raises(AIGatewayDecryptError, match="does not unwrap"):
        decryptor.open(foreign, field="RequestBody")
    with pytest.raises(AIGatewayDecryptError, match="'key' is not base64"):
        decryptor.open(malformed, field="RequestBody")
    assert len(rsa_calls) == 5 and decryptor.unwraps == 5


# --- the private key -------------------------------------------------------------------------


def pem(pair: KeyPair, fmt: serialization.PrivateFormat, passphrase: bytes | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return pair.private.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


@pytest.mark.parametrize(
    "text",
    [
        lambda p: pem(p, serialization.PrivateFormat.PKCS8),
        lambda p: pem(p, serialization.PrivateFormat.TraditionalOpenSSL),
        lambda p: pem(p, serialization.PrivateFormat.PKCS8).replace("\n", " "),  # a one-line form field
        lambda p: pem(p, serialization.PrivateFormat.PKCS8).replace("\n", ""),
        lambda p: pem(p, serialization.PrivateFormat.PKCS8).replace("\n", "\\n"),  # escaped in JSON/env
        lambda p: "\n  " + pem(p, serialization.PrivateFormat.PKCS8) + "\n\n",
    ],
    ids=["pkcs8", "pkcs1", "one-line-spaces", "one-line", "escaped-newlines", "padded"],
)
def test_private_key_loads_from_pem_forms(key_pair: KeyPair, text: object) -> None:
    key = LogpushPrivateKey.from_pem(text(key_pair))  # type: ignore[operator]
    envelope = seal(PLAINTEXT, key_pair)
    assert EnvelopeDecryptor(key).open(envelope, field="RequestBody") == PLAINTEXT
    assert key.key_size == 2048


def test_encrypted_pem_loads_with_its_passphrase(key_pair: KeyPair) -> None:
    text = pem(key_pair, serialization.PrivateFormat.PKCS8, b"s3cret-phrase")
    for passphrase in ("s3cret-phrase", b"s3cret-phrase"):
        key = LogpushPrivateKey.from_pem(text, passphrase)
        assert EnvelopeDecryptor(key).open(seal(b"x", key_pair), field="Metadata") == b"x"
    one_line = LogpushPrivateKey.from_pem(text.replace("\n", " "), "s3cret-phrase")
    assert one_line.fingerprint == key.fingerprint


@pytest.mark.parametrize(
    ("encrypted", "passphrase", "says"),
    [
        (True, None, "is encrypted: give its passphrase"),
        (True, "wrong-phrase", "wrong passphrase"),
        (False, "s3cret-phrase", "a passphrase was given but the Logpush private key is not encrypted"),
    ],
)
def test_passphrase_errors_are_clear_and_quote_nothing(
    key_pair: KeyPair, encrypted: bool, passphrase: str | None, says: str
) -> None:
    text = pem(key_pair, serialization.PrivateFormat.PKCS8, b"s3cret-phrase" if encrypted else None)
    with pytest.raises(AIGatewayConfigError, match=re.escape(says)) as info:
        LogpushPrivateKey.from_pem(text, passphrase)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    for line in text.splitlines()[1:-1]:
        assert line not in str(info.value)
    assert "s3cret" not in str(info.value) and "wrong-phrase" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not a key at all", "not a PEM private key"),
        ("-----BEGIN PRIVATE KEY-----\nQUJDRA==\n-----END PRIVATE KEY-----\n", "not a valid PEM private key"),
    ],
)
def test_unloadable_keys_are_refused(text: str, says: str) -> None:
    with pytest.raises(AIGatewayConfigError, match=says):
        LogpushPrivateKey.from_pem(text)


@pytest.mark.parametrize("damage", ["dmp1", "dmq1", "iqmp", "d"])
def test_a_damaged_key_is_refused_at_load(key_pair: KeyPair, damage: str) -> None:
    # OpenSSL's slow validation is skipped at load: the numbers' own consistency check must catch
    # a key whose numbers no longer fit together, before any envelope is opened with it.
    numbers = key_pair.private.private_numbers()
    values = {name: getattr(numbers, name) for name in ("p", "q", "d", "dmp1", "dmq1", "iqmp")}
    values[damage] += 2  # stays odd where it was
    damaged = rsa.RSAPrivateNumbers(**values, public_numbers=numbers.public_numbers).private_key(
        unsafe_skip_rsa_key_validation=True
    )
    pem = damaged.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(AIGatewayConfigError, match="inconsistent") as info:
        LogpushPrivateKey.from_pem(pem)
    assert str(numbers.d)[:16] not in str(info.value)


def test_a_key_that_is_not_rsa_is_refused() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(AIGatewayConfigError, match="must be an RSA key"):
        LogpushPrivateKey.from_pem(ec_pem)


def test_key_repr_shows_no_key_material_and_the_key_does_not_pickle(key_pair: KeyPair) -> None:
    key = LogpushPrivateKey.from_pem(key_pair.private_pem)
    decryptor = EnvelopeDecryptor(key)
    decryptor.open(seal(PLAINTEXT, key_pair), field="RequestBody")
    body = "".join(key_pair.private_pem.decode().splitlines()[1:-1])
    numbers = key_pair.private.private_numbers()
    for shown in (repr(key), str(key), repr(decryptor)):
        assert "rsa-2048" in shown
        assert not any(body[i : i + 12] in shown for i in range(0, len(body) - 12, 6))
        for secret in (numbers.d, numbers.p, numbers.q, numbers.public_numbers.n):
            assert str(secret)[:12] not in shown and f"{secret:x}"[:12] not in shown
    assert "unwraps=1" in repr(decryptor)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)
