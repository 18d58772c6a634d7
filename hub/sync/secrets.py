"""Connection secrets encrypted at rest (Fernet, a key from the environment).

The key is `ENCRYPTION_KEY` (a Fernet key); the embedded profile derives one from the
secret key, production must set it. Secrets are decrypted only to build a connector.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


def fernet_for(encryption_key: str | None, secret_key: str) -> Fernet:
    if encryption_key:
        return Fernet(encryption_key.encode())
    derived = hashlib.sha256(b"aeohub-connection-secrets:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(fernet: Fernet, secrets: Mapping[str, Any]) -> str | None:
    if not secrets:
        return None
    return fernet.encrypt(json.dumps(dict(secrets)).encode()).decode()


def decrypt(fernet: Fernet, token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return dict(json.loads(fernet.decrypt(token.encode())))
    except InvalidToken as exc:
        raise RuntimeError(
            "connection secrets cannot be decrypted: AEOHUB_ENCRYPTION_KEY is not the key "
            "they were stored with"
        ) from exc
