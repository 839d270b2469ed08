"""Credentials of the REST commands: options, variables, the terminal prompt."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from stowpair.cli import build_parser
from stowpair.queue.cli_auth import CredentialsError, authorization


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def args(*argv: str) -> Any:
    return build_parser().parse_args(["tasks", *argv])


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ((), {}, None),
        (("--user", "alice:s3cret"), {}, basic("alice:s3cret")),
        ((), {"STOWPAIR_USER": "alice:s:3"}, basic("alice:s:3")),
        (("--user", "alice"), {"STOWPAIR_PASSWORD": "pw"}, basic("alice:pw")),
        (("--token", "abc.def.ghi"), {}, "Bearer abc.def.ghi"),
        ((), {"STOWPAIR_TOKEN": "t"}, "Bearer t"),
        (("--user", "bob:x"), {"STOWPAIR_USER": "alice:y"}, basic("bob:x")),
    ],
    ids=["none", "user:pass", "env user", "env password", "token", "env token", "option wins"],
)
def test_authorization_header(argv: tuple[str, ...], env: dict[str, str], expected: str) -> None:
    """When credentials come from options or variables, the header carries them."""
    assert authorization(args(*argv), env, stdin=io.StringIO()) == expected


def test_password_asked_on_a_terminal() -> None:
    """When --user has no password and none is set, the terminal is asked."""
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    header = authorization(args("--user", "alice"), {}, stdin=Tty(), prompt=prompt)
    assert (header, asked) == (basic("alice:typed"), ["Password for alice: "])


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (("--user", "alice"), {}, "no password for user alice"),
        (("--user", "a:b", "--token", "t"), {}, "not both"),
        (("--user", ":pw"), {}, "needs a user name"),
    ],
    ids=["no password off a terminal", "both", "no name"],
)
def test_unusable_credentials(argv: tuple[str, ...], env: dict[str, str], message: str) -> None:
    """When the credentials cannot be used, the error says why and what to do."""
    with pytest.raises(CredentialsError) as caught:
        authorization(args(*argv), env, stdin=io.StringIO())
    assert message in str(caught.value)
