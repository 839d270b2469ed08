"""Signing keys and JWT access tokens for tests (PyJWT + cryptography)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "http://idp.test/realms/stowpair"
AUDIENCE = "http://stowrsd.test"
NOW = 1_800_000_000.0


@dataclass
class Signer:
    kid: str = "k1"
    alg: str = "RS256"
    key: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.key is None:
            if self.alg.startswith("ES"):
                self.key = ec.generate_private_key(ec.SECP256R1())
            else:
                self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        doc: dict[str, Any] = json.loads(algorithm.to_jwk(self.key.public_key()))
        return {**doc, "kid": self.kid, "use": "sig", "alg": self.alg}

    def token(self, now: float = NOW, ttl: float = 5, **claims: Any) -> str:
        payload: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": "stowpair", "iat": int(now),
            "exp": int(now + ttl), "scope": "stow", "client_id": "stowpair",
        }  # fmt: skip
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.key, algorithm=self.alg, headers={"kid": self.kid})


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [s.jwk() for s in signers]}


def write_jwks(path: Path, *signers: Signer) -> Path:
    path.write_text(json.dumps(jwks(*signers)))
    return path
