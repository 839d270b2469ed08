"""The guard around the REST root: it covers children it does not know, added before or
after it wraps the root, at any depth."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.test.requesthelper import DummyRequest

from stowpair.auth.guard import AuthGuard
from stowpair.auth.passwords import hash_password
from stowpair.auth.policy import AccessPolicy
from stowpair.config.model import RestAuth

HASH = hash_password("pw", ln=1)


class Data(Resource):
    """A page someone else serves (the console's files, an event stream)."""

    isLeaf = True

    def __init__(self, body: bytes, content_type: str) -> None:
        super().__init__()
        self.body, self.content_type = body, content_type

    def render_GET(self, request: Any) -> bytes:
        return self.body


def guard_with_console() -> tuple[AuthGuard, Resource]:
    root = Resource()
    guard = AuthGuard(root, None, Clock())
    ui = Resource()
    ui.putChild(b"index.html", Data(b"<html>", "text/html"))
    guard.putChild(b"ui", ui)  # as another module would add its pages, after wrapping
    root.putChild(b"events", Data(b"data: x\n\n", "text/event-stream"))  # or to the root
    return guard, ui


def route(guard: AuthGuard, path: bytes, authorization: str | None = None) -> Any:
    request = DummyRequest(path.split(b"/")[1:])
    request.path = path
    if authorization:
        request.requestHeaders.setRawHeaders(b"authorization", [authorization.encode()])
    return getChildForRequest(guard, request)


def policy() -> AccessPolicy:
    """Basic auth for alice:pw; password checks run inline."""
    return AccessPolicy(RestAuth("basic", users={"alice": HASH}), Clock(), lambda f: succeed(f()))


@pytest.mark.parametrize("path", [b"/ui/index.html", b"/events", b"/ui/", b"/nothing/here"])
def test_unknown_children_are_covered(path: bytes) -> None:
    """When [rest.auth] is on, any path, added by any module, needs credentials."""
    guard, _ = guard_with_console()
    guard.set_policy(policy())
    refused = route(guard, path)
    assert type(refused).__name__ == "_Refused"
    assert refused.response.code == 401


def test_without_policy_the_children_answer() -> None:
    """When there is no [rest.auth], routing reaches the child itself."""
    guard, _ = guard_with_console()
    assert isinstance(route(guard, b"/ui/index.html"), Data)


def test_checked_credentials_reach_the_child() -> None:
    """When the credentials were checked once, the next request reaches the child."""
    guard, _ = guard_with_console()
    guard.set_policy(policy())
    header = "Basic " + base64.b64encode(b"alice:pw").decode()
    first = route(guard, b"/ui/index.html", header)
    assert type(first).__name__ == "_Pending"
    assert isinstance(route(guard, b"/ui/index.html", header), Data)
