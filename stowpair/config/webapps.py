"""``[webapps.NAME]`` tables: the Web Application (``dcmWebApp``) and its properties.

Property names are dcm4chee's ``dcmProperty`` names exactly (docs/dcm4chee.md, "Web Application
properties") plus our additions (:data:`~stowpair.config.model.EXTRA_WEBAPP_PROPERTIES`). Values may
be strings, as in LDAP (``chunked = "true"``), or TOML booleans and numbers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stowpair.config.checks import Checker, Section, known, show
from stowpair.config.durations import parse_duration
from stowpair.config.model import WEBAPP_PROPERTIES, WebApplication, WebAppProperties
from stowpair.config.secret import Secret
from stowpair.config.ts_keywords import TS_KEYWORDS

WEBAPP_KEYS = (
    "url",
    "host",
    "port",
    "tls",
    "service_path",
    "service_classes",
    "description",
    "installed",
    "properties",
    "keycloak-client",
)
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+", re.ASCII)
_SERVICE_CLASS = re.compile(r"[A-Z][A-Z0-9_]*", re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_BOOLEANS = ("chunked", "allow-any-hostname", "disable-trust-manager")
_COUNTS = ("concurrency", "max-instances-per-request", "max-request-bytes")
_TIMEOUTS = ("connect-timeout", "response-timeout")
_FILES = ("ca-file", "tls-cert", "tls-key")


def parse_transfer_syntaxes(text: str) -> tuple[str, ...]:
    """``JPEGLosslessSV1, 1.2.840.10008.1.2.1`` → UIDs; ``*`` stays ``*``.

    An item starting with a letter is a dcm4che keyword, as in ``UID.forName``.
    Raises ValueError naming the first bad item.
    """
    uids: list[str] = []
    for item in (i.strip() for i in text.split(",")):
        if item == "*":
            uids.append("*")
        elif item[:1].isalpha():
            if item not in TS_KEYWORDS:
                raise ValueError(
                    f'"{item}" is not a transfer syntax keyword '
                    "(e.g. ExplicitVRLittleEndian, JPEGLosslessSV1, JPEG2000Lossless)"
                )
            uids.append(TS_KEYWORDS[item])
        elif _UID.fullmatch(item) and len(item) <= 64:
            uids.append(item)
        else:
            raise ValueError(f'"{item}" is neither a UID nor a transfer syntax keyword')
    return tuple(uids)


def property_text(value: Any) -> str | None:
    """A property value as dcm4chee would see it (a string), or None for tables/lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str) and "\x00" not in str(value):
        return str(value).strip()
    return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # e.g. a name too long for the file system
        return False


def _secret(props: Section, name: str, text: str) -> Secret | None:
    base = props.checker.base_dir
    if text.startswith("env:"):
        if not _ENV_NAME.fullmatch(text[4:]):
            props.error(name, f'property "{name}": env:NAME needs a variable name, not "{text}"')
            return None
    elif text.startswith("file:"):
        target = Path(text[5:])
        if not text[5:] or not _is_file(base / target):
            props.error(name, f'property "{name}": secret file "{base / target}" does not exist')
            return None
    elif name == "basic-auth" and ":" not in text:
        props.error(name, 'property "basic-auth" must be user:password (or env:NAME, file:PATH)')
        return None
    return Secret(text, base)


def _property(props: Section, name: str, text: str, values: dict[str, Any]) -> None:
    """Parse one property into ``values`` (WebAppProperties keyword arguments)."""
    field = name.replace("-", "_")
    fail = f'property "{name}" must be '
    if name in _BOOLEANS:
        if text.lower() not in ("true", "false"):
            props.error(name, f"{fail}true or false, not {show(text)}")
            return
        values[field] = text.lower() == "true"
    elif name in _COUNTS:
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            props.error(name, f"{fail}a whole number >= 1, not {show(text)}")
            return
        values[field] = int(text)
    elif name in _TIMEOUTS:
        try:
            seconds = parse_duration(text) if text[:1] in "Pp" else float(text)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0 or seconds == float("inf"):
            props.error(name, f"{fail}seconds >= 0 (or PT30S), 0 = none, not {show(text)}")
            return
        # 0 means no timeout, as in dcm4chee; an absent one keeps the model's default.
        values[field] = seconds or None
    elif name == "transfer-syntax":
        try:
            values[field] = parse_transfer_syntaxes(text)
        except ValueError as e:
            props.error(name, f'property "transfer-syntax": {e}; or * for as stored')
    elif name in ("bearer-token", "basic-auth"):
        values[field] = _secret(props, name, text)
    elif name in _FILES:
        path = props.checker.base_dir / text
        if not _is_file(path):
            props.error(name, f'property "{name}": file "{path}" does not exist')
            return
        values[field] = path


def read_properties(props: Section) -> WebAppProperties:
    values: dict[str, Any] = {}
    for name, raw in props.data.items():
        if name not in WEBAPP_PROPERTIES:
            props.error(name, f'unknown property "{name}" (known: {known(WEBAPP_PROPERTIES)})')
            continue
        value = property_text(raw)
        if isinstance(raw, list) and name == "transfer-syntax":
            value = ",".join(str(v) for v in raw)
        if not value:
            props.error(name, f'property "{name}" needs a value, not {show(raw)}')
            continue
        _property(props, name, value, values)
    if "tls_key" in values and "tls_cert" not in values:
        props.error("tls-key", 'property "tls-key" needs "tls-cert" (the client certificate)')
    return WebAppProperties(**values)


def _url(app: Section) -> str:
    """The service URL, from ``url`` or from host/port/tls/service_path."""
    if app.has("url"):
        for key in ("host", "port", "tls", "service_path"):
            if app.has(key):
                app.error(key, f"give either url or host/port/tls/service_path, not both ({key})")
        url = app.string("url", "")
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
            parts.port  # noqa: B018  # raises ValueError for a bad or out-of-range port
        except ValueError:  # e.g. "http://[::1" or a port over 65535
            valid = False
        if valid and (parts.username or parts.password):
            # never echo the URL here: it holds a credential
            app.error("url", "url must not hold user:password@; use the basic-auth property")
        elif not valid:
            app.error("url", f"url must be http://HOST:PORT/PATH or https://..., not {show(url)}")
        elif urlsplit(url).path.rstrip("/").endswith("/studies"):
            app.error("url", "url is the service URL without /studies (it is added per request)")
        return url.rstrip("/")
    if not app.has("host"):
        app.error(None, "needs url, or host and port (with optional tls, service_path)")
        return ""
    host = app.string("host", "")
    tls = app.boolean("tls", False)
    port = app.integer("port", 443 if tls else 80, 1, 65535)
    path = app.string("service_path", "/")
    path = path if path.startswith("/") else "/" + path  # as dcm4che's setServicePath
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{port}{path.rstrip('/')}"


def read_webapp(checker: Checker, name: str, data: Any) -> WebApplication:
    app = checker.section(data, ("webapps", name), f'webapp "{name}"')
    app.allow(WEBAPP_KEYS)
    url = _url(app)
    classes = app.strings("service_classes", ("STOW_RS",))
    for item in classes:
        if not _SERVICE_CLASS.fullmatch(item):
            app.error("service_classes", f'service class "{item}" is not like STOW_RS, QIDO_RS')
    props = app.table("properties")
    return WebApplication(
        name=name,
        url=url,
        service_classes=classes,
        properties=read_properties(props) if props else WebAppProperties(),
        description=app.string("description", ""),
        installed=app.boolean("installed", True),
        keycloak_client=app.string("keycloak-client", "") or None,
    )
