"""Password hashes for the REST API's HTTP Basic users (``[rest.auth.users]``).

The configuration holds hashes, never passwords. Two formats, in the modular-crypt
layout (``$scheme$parameters$salt$hash``, salt and hash in base64 without padding, ``.``
read as ``+``):

* ``$scrypt$ln=15,r=8,p=1$<salt>$<hash>``: scrypt (RFC 7914) with N = 2^ln; what
  ``stowpair hash-password`` writes (32 MiB and about 0.1-0.3 s per check);
* ``$pbkdf2-sha256$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA256 (RFC 8018).

Checking a password is deliberately slow: callers run :func:`verify_password` in a
thread, never on the reactor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

#: What ``stowpair hash-password`` writes: N = 2^15, r = 8, p = 1 (32 MiB).
DEFAULT_LN = 15
#: Bounds that keep one check under ~256 MiB and a few seconds.
MAX_LN = 17
_LN, _R, _P = (1, MAX_LN), (1, 16), (1, 4)
_ITERATIONS = (1_000, 10_000_000)
_SCRYPT = re.compile(r"\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/.]+)\$([A-Za-z0-9+/.]+)")
_PBKDF2 = re.compile(r"\$pbkdf2-sha256\$(\d+)\$([A-Za-z0-9+/.]+)\$([A-Za-z0-9+/.]+)")
_HINT = "generate one with `stowpair hash-password`"


class PasswordHashError(ValueError):
    """A configured value is not a password hash this module can check."""


@dataclass(frozen=True)
class PasswordHash:
    """A parsed hash; ``cost`` is scrypt's ``ln`` or PBKDF2's iterations."""

    scheme: str
    cost: int
    salt: bytes
    digest: bytes
    r: int = 8
    p: int = 1

    def derive(self, password: str) -> bytes:
        secret = password.encode("utf-8")
        if self.scheme == "scrypt":
            n = 2**self.cost
            return hashlib.scrypt(
                secret,
                salt=self.salt,
                n=n,
                r=self.r,
                p=self.p,
                maxmem=129 * self.r * n * self.p + 1024 * 1024,
                dklen=len(self.digest),
            )
        return hashlib.pbkdf2_hmac("sha256", secret, self.salt, self.cost, len(self.digest))


def _b64(text: str) -> bytes:
    text = text.replace(".", "+")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise PasswordHashError(f"'{text[:12]}...' is not base64") from None


def _in(value: int, bounds: tuple[int, int], name: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise PasswordHashError(f"{name}={value} is outside {low}..{high}")
    return value


def parse_hash(encoded: str) -> PasswordHash:
    """The hash in ``encoded``; PasswordHashError saying what is wrong (never echoing
    more than the scheme, in case a password was pasted by mistake)."""
    if m := _SCRYPT.fullmatch(encoded):
        ln, r, p = (int(g) for g in m.groups()[:3])
        parsed = PasswordHash(
            "scrypt",
            _in(ln, _LN, "ln"),
            _b64(m.group(4)),
            _b64(m.group(5)),
            r=_in(r, _R, "r"),
            p=_in(p, _P, "p"),
        )
    elif m := _PBKDF2.fullmatch(encoded):
        rounds = _in(int(m.group(1)), _ITERATIONS, "iterations")
        parsed = PasswordHash("pbkdf2-sha256", rounds, _b64(m.group(2)), _b64(m.group(3)))
    elif encoded.startswith(("$scrypt$", "$pbkdf2-sha256$")):
        scheme = encoded.split("$")[1]
        raise PasswordHashError(f"malformed {scheme} hash; {_HINT}")
    else:
        raise PasswordHashError(f"not a password hash (passwords are never written here); {_HINT}")
    if len(parsed.salt) < 8 or len(parsed.digest) < 16:
        raise PasswordHashError(f"salt or hash too short; {_HINT}")
    return parsed


def hash_password(password: str, ln: int = DEFAULT_LN, salt: bytes | None = None) -> str:
    """A new ``$scrypt$`` hash of ``password`` with a random 16-byte salt."""
    _in(ln, _LN, "ln")
    salt = salt if salt is not None else os.urandom(16)
    digest = PasswordHash("scrypt", ln, salt, b"\0" * 32).derive(password)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    return f"$scrypt$ln={ln},r=8,p=1${b64(salt)}${b64(digest)}"


def verify_password(password: str, encoded: str | PasswordHash) -> bool:
    """Whether ``password`` matches; constant-time comparison. Slow: call it in a thread."""
    parsed = parse_hash(encoded) if isinstance(encoded, str) else encoded
    return hmac.compare_digest(parsed.derive(password), parsed.digest)
