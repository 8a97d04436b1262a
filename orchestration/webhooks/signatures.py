"""Checking that a delivery comes from the vendor, per each vendor's own scheme.

- Greenhouse: `Signature: sha256 <hex>`, HMAC-SHA256 of the raw body with the web hook's secret.
- HighLevel: `X-GHL-Signature: <base64>`, an Ed25519 signature of the raw body made with
  HighLevel's key (the retired RSA `x-wh-signature` is not accepted).
- Keap: `X-Hook-Secret`, the secret Keap sent when the hook was verified, on every delivery.
Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key


class SignatureError(Exception):
    """The delivery is not provably from the vendor; the message says why (never the secret)."""


def greenhouse_signature(secret: str, body: bytes) -> str:
    """The `Signature` header Greenhouse sends for this body."""
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_greenhouse(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureError("missing Signature header (expected 'sha256 <hex>')")
    algorithm, _, given = header.strip().partition(" ")
    if algorithm.lower() != "sha256" or not given.strip():
        raise SignatureError("Signature header is not 'sha256 <hex>'")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise SignatureError("Signature does not match the body (wrong secret, or the body was "
                             "changed on the way)")


def load_ed25519_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; a clear error for anything else."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_public_key(data)
    except ValueError as e:
        raise ValueError(f"HighLevel webhook public key is not a PEM public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("HighLevel webhook public key is not an Ed25519 key (X-GHL-Signature "
                         "is Ed25519; the RSA key belongs to the retired x-wh-signature)")
    return key


def check_highlevel(key: Ed25519PublicKey, body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureError("missing X-GHL-Signature header (base64 Ed25519 signature)")
    try:
        signature = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise SignatureError("X-GHL-Signature is not base64") from e
    try:
        key.verify(signature, body)
    except InvalidSignature as e:
        raise SignatureError("X-GHL-Signature does not verify against the body with "
                             "HighLevel's public key") from e


def check_keap(known: Iterable[str], header: str | None) -> None:
    if not header:
        raise SignatureError("missing X-Hook-Secret header")
    secrets = list(known)
    if not secrets:
        raise SignatureError("no Keap hook has been verified with this receiver yet: run "
                             "`talentvault webhooks register --source keap --url URL`")
    given = header.strip().encode()
    # compare with every known secret (no early exit), so timing tells nothing
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(secret.encode(), given)
    if not matched:
        raise SignatureError("X-Hook-Secret does not match the secret of any verified Keap hook")
