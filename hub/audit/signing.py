"""The hub's audit signing key (Ed25519) and the signed chain head.

The key is `AUDIT_SIGNING_KEY` (environment: `AEOHUB_AUDIT_SIGNING_KEY`): a PEM-encoded
PKCS#8 Ed25519 private key, or the 32-byte private seed in base64url. `aeohub audit
keygen` prints a new one. Without it, the embedded and testing profiles derive a key
deterministically from `SECRET_KEY` with HKDF-SHA256 (salt `aeohub-audit`, info
`audit chain head signing key (Ed25519)`), so that every worker signs with the same key
and restarts keep it. Production needs its own key: the derived one would change whenever
the secret key is rotated, and partners would see an unexplained new key.

A signed head is the JSON `{"hash": ..., "recorded_at": ..., "seq": ...}` in canonical
form (sorted keys, no spaces), signed with Ed25519 ("EdDSA" in JOSE terms); the public key
is published as an RFC 8037 JWK with an RFC 7638 thumbprint as `kid`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import HubError

ALGORITHM = "EdDSA"
HKDF_SALT = b"aeohub-audit"
HKDF_INFO = b"audit chain head signing key (Ed25519)"


class SigningKeyMissing(HubError):
    status = 503
    type_slug = "audit-signing-key-missing"
    title = "Audit signing key not configured"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_key(text: str) -> Ed25519PrivateKey:
    """A key from PEM (PKCS#8) or from the base64url 32-byte seed."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("AUDIT_SIGNING_KEY is a PEM key but not an Ed25519 one")
        return key
    try:
        seed = _b64url_decode(text.replace("+", "-").replace("/", "_"))
    except ValueError as exc:
        raise ValueError("AUDIT_SIGNING_KEY is neither PEM nor base64url") from exc
    if len(seed) != 32:
        raise ValueError(f"AUDIT_SIGNING_KEY must hold 32 bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def derive_key(secret_key: str) -> Ed25519PrivateKey:
    """The embedded profile's key: HKDF-SHA256 of the secret key, 32 bytes of seed."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT,
                info=HKDF_INFO).derive(secret_key.encode("utf-8"))
    return Ed25519PrivateKey.from_private_bytes(seed)


def signing_key(config: Mapping[str, Any]) -> Ed25519PrivateKey:
    """The configured key; derived from SECRET_KEY outside production."""
    configured = config.get("AUDIT_SIGNING_KEY")
    if configured:
        return parse_key(str(configured))
    if config.get("ENV") == "production":
        raise SigningKeyMissing(
            "set AEOHUB_AUDIT_SIGNING_KEY (see `aeohub audit keygen`): production does not "
            "derive the audit signing key from the secret key")
    return derive_key(str(config["SECRET_KEY"]))


def new_key_text() -> str:
    """A fresh key in the base64url seed form AUDIT_SIGNING_KEY accepts."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return b64url(seed)


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey) -> dict[str, str]:
    """The public key as an OKP JWK (RFC 8037) with its thumbprint (RFC 7638) as kid."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    x = b64url(public.public_bytes(serialization.Encoding.Raw,
                                   serialization.PublicFormat.Raw))
    members = {"crv": "Ed25519", "kty": "OKP", "x": x}
    thumbprint = hashlib.sha256(
        json.dumps(members, sort_keys=True, separators=(",", ":")).encode()).digest()
    return {**members, "kid": b64url(thumbprint), "alg": ALGORITHM, "use": "sig"}


def key_from_jwk(jwk: Mapping[str, str]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 OKP key")
    return Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))


def head_payload(seq: int, hash_: str, recorded_at: str | None) -> bytes:
    """The exact bytes a head signature covers."""
    return json.dumps({"hash": hash_, "recorded_at": recorded_at, "seq": seq},
                      sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_head(key: Ed25519PrivateKey, seq: int, hash_: str,
              recorded_at: str | None) -> dict[str, Any]:
    """The signed head as served at /api/v1/audit/head."""
    payload = head_payload(seq, hash_, recorded_at)
    return {
        "seq": seq,
        "hash": hash_,
        "recorded_at": recorded_at,
        "algorithm": ALGORITHM,
        "signed_payload": payload.decode("utf-8"),
        "signature": b64url(key.sign(payload)),
        "key": public_jwk(key),
    }


def verify_head(head: Mapping[str, Any], jwk: Mapping[str, str] | None = None) -> bool:
    """Whether a served head's signature is valid for its fields (and the given key)."""
    public = key_from_jwk(jwk or head["key"])
    payload = head_payload(int(head["seq"]), str(head["hash"]), head.get("recorded_at"))
    try:
        public.verify(_b64url_decode(str(head["signature"])), payload)
    except InvalidSignature:
        return False
    return True
