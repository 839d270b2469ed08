"""Password hashes of ``[rest.auth.users]`` and ``stowpair hash-password``."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowpair.auth.commands import read_password, run_hash_password
from stowpair.auth.passwords import (
    PasswordHashError,
    hash_password,
    parse_hash,
    verify_password,
)
from stowpair.cli import build_parser


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def test_hash_then_verify() -> None:
    """When a password is hashed, the same password verifies and another does not."""
    encoded = hash_password("correct horse", ln=4)
    assert encoded.startswith("$scrypt$ln=4,r=8,p=1$")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)


def test_same_password_gets_a_new_salt() -> None:
    """When the same password is hashed twice, the hashes differ (random salt)."""
    assert hash_password("x", ln=4) != hash_password("x", ln=4)


def test_pbkdf2_sha256() -> None:
    """When a PBKDF2-SHA256 hash is configured, its password verifies."""
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 1000, 32)
    encoded = f"$pbkdf2-sha256$1000${b64(salt)}${b64(digest)}"
    assert verify_password("pw", encoded)
    assert not verify_password("pw2", encoded)


def test_dot_reads_as_plus() -> None:
    """When salt or hash use '.' for '+' (adapted base64), they decode the same."""
    salt = bytes(range(251, 255)) * 4  # encodes with '+' or '/'
    encoded = hash_password("pw", ln=4, salt=salt)
    assert verify_password("pw", encoded.replace("+", "."))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3cret", "not a password hash (passwords are never written here)"),
        ("", "not a password hash"),
        ("$scrypt$ln=15$abc$def", "malformed scrypt hash"),
        ("$scrypt$ln=40,r=8,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43, "ln=40 is outside 1..17"),
        ("$scrypt$ln=4,r=99,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43, "r=99 is outside 1..16"),
        ("$scrypt$ln=4,r=8,p=1$c2FsdA$" + "A" * 43, "salt or hash too short"),
        ("$pbkdf2-sha256$10$c2FsdHNhbHRzYWx0$" + "A" * 43, "iterations=10 is outside"),
        ("$pbkdf2-sha256$x$y", "malformed pbkdf2-sha256 hash"),
        ("$2b$12$" + "a" * 53, "not a password hash"),
    ],
    ids=["plain", "empty", "scrypt-short", "ln", "r", "salt", "rounds", "pbkdf2-short", "bcrypt"],
)
def test_bad_hash_says_what(value: str, message: str) -> None:
    """When a configured value is not a usable hash, the error says what and how to fix."""
    with pytest.raises(PasswordHashError) as caught:
        parse_hash(value)
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value)


@given(st.text(max_size=80))
def test_parse_never_fails_otherwise(value: str) -> None:
    """When any text is parsed, it is a hash or a PasswordHashError, nothing else."""
    try:
        parse_hash(value)
    except PasswordHashError:
        pass


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_password_round_trips(password: str) -> None:
    """When any Unicode password is hashed, it verifies."""
    assert verify_password(password, hash_password(password, ln=1))


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def hash_cli(*argv: str, stdin: io.StringIO) -> tuple[int, str]:
    out = io.StringIO()
    args = build_parser().parse_args(["hash-password", *argv])
    return run_hash_password(args, stdin=stdin, out=out), out.getvalue()


def test_cli_prints_a_toml_line() -> None:
    """When a user name is given, the output is a TOML line whose hash verifies."""
    code, out = hash_cli("alice", "--cost", "4", stdin=io.StringIO("s3cret\n"))
    assert code == 0
    name, _, value = out.strip().partition(" = ")
    assert name == '"alice"'
    assert verify_password("s3cret", value.strip('"'))


def test_cli_refuses_an_empty_password(capsys: pytest.CaptureFixture[str]) -> None:
    """When standard input is empty, nothing is printed and the exit code is 1."""
    assert hash_cli("--cost", "4", stdin=io.StringIO("")) == (1, "")
    assert "empty password" in capsys.readouterr().err


def test_terminal_asks_twice() -> None:
    """When typed on a terminal, the password is asked twice and must match."""
    answers = iter(["a", "b"])

    def prompt(text: str) -> Any:
        return next(answers)

    with pytest.raises(ValueError, match="differ"):
        read_password(Tty(), prompt)
    assert read_password(Tty(), lambda text: "same") == "same"
