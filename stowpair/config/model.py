"""The typed configuration model, in dcm4chee's words.

Every loader (TOML, LDIF) produces a :class:`Config`; every subsystem reads only
these objects. Durations are seconds (float); schedules are parsed
:class:`~stowpair.config.schedule.ScheduleExpression` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stowpair.config.schedule import ScheduleExpression
from stowpair.config.secret import Secret

Entity = Literal["Study", "Series", "Instance"]

#: The seven dcm4chee Web Application properties, with their exact names.
DCM4CHEE_WEBAPP_PROPERTIES = (
    "chunked",
    "concurrency",
    "transfer-syntax",
    "bearer-token",
    "basic-auth",
    "allow-any-hostname",
    "disable-trust-manager",
)
#: Our additions; new names that never change the meaning of the seven above.
EXTRA_WEBAPP_PROPERTIES = (
    "connect-timeout",
    "response-timeout",
    "ca-file",
    "tls-cert",
    "tls-key",
    "max-instances-per-request",
    "max-request-bytes",
)
WEBAPP_PROPERTIES = DCM4CHEE_WEBAPP_PROPERTIES + EXTRA_WEBAPP_PROPERTIES
SECRET_PROPERTIES = ("bearer-token", "basic-auth")


@dataclass(frozen=True)
class ClientTimeouts:
    """Bounds on slow clients, per connection (seconds; rate in bytes per second).

    In the spirit of nginx's ``client_header_timeout`` and ``client_body_timeout`` (60 s
    each) and Apache's ``mod_reqtimeout`` minimum rate: a client that trickles a byte now
    and then is closed instead of holding a connection (and a file descriptor) for ever.
    """

    #: The request line and every header must arrive within this time of the first byte.
    header: float = 60.0
    #: The body is watched in windows of this length ...
    body: float = 60.0
    #: ... and each window must bring at least ``body_min_rate * body`` bytes.
    body_min_rate: float = 500.0
    #: A connection silent this long is closed (also between keep-alive requests).
    idle: float = 60.0


@dataclass(frozen=True)
class Listener:
    """A TCP (or TLS) listener; loopback unless configured otherwise."""

    host: str = "127.0.0.1"
    port: int = 8080
    enabled: bool = True
    timeouts: ClientTimeouts = field(default_factory=ClientTimeouts)
    #: ``listen``: a Twisted endpoint description (``tcp:``, ``tcp6:``, ``ssl:``); then
    #: ``host`` and ``port`` are the interface and port it names. None: TCP on host:port.
    endpoint: str | None = None

    @property
    def description(self) -> str:
        """What :func:`twisted.internet.endpoints.serverFromString` is given."""
        if self.endpoint is not None:
            return self.endpoint
        return f"tcp:{self.port}:interface={self.host.replace(':', chr(92) + ':')}"

    @property
    def scheme(self) -> str:
        return "https" if self.description.startswith("ssl:") else "http"


@dataclass(frozen=True)
class EmulatorConfig:
    """The built-in stowrsd emulator (the same code as ``twistd -n stowrsd``)."""

    enabled: bool = True
    listener: Listener = field(default_factory=lambda: Listener(port=18080))
    path: str = "/stowrs"
    directory: Path = Path("var/stowrsd")
    layout: Literal["uid", "unpack", "discard"] = "uid"
    fsync: bool = True


@dataclass(frozen=True)
class Device:
    name: str = "stowpair"
    ae_titles: tuple[str, ...] = ("STOWPAIR",)


@dataclass(frozen=True)
class ArchivePaths:
    """The ``[archive]`` section: where instances and the index live, ingest limits."""

    storage: Path = Path("var/archive")
    database: Path = Path("var/stowpair.sqlite")
    #: Largest STOW-RS ingest request body in bytes (413 beyond); None = no limit.
    max_request_bytes: int | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """The ``[database]`` section: where the task store and the archive index live.

    Without ``url``: SQLite files beside ``archive.database`` (one node). With a
    ``postgresql://`` URL: one PostgreSQL database that every node of a cluster shares
    (docs/cluster.md). A node holds a running task under a lease of ``lease`` seconds,
    renewed by a heartbeat every ``heartbeat_interval`` seconds.
    """

    url: str | None = None
    #: The password, when not in the URL (or in libpq's PGPASSWORD / ~/.pgpass).
    password: Secret | None = None
    pool_size: int = 4
    lease: float = 60.0
    heartbeat_interval: float = 10.0

    @property
    def shown_url(self) -> str | None:
        """The URL as it may be printed: any password in it masked."""
        return None if self.url is None else mask_url_password(self.url)


def mask_url_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:********@host/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, at, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':********' if colon else ''}{at}{host}"


@dataclass(frozen=True)
class WebAppProperties:
    """A Web Application's ``dcmProperty`` values, parsed."""

    chunked: bool = False
    concurrency: int = 1
    #: UIDs (keywords already resolved); empty = send as stored.
    transfer_syntax: tuple[str, ...] = ()
    bearer_token: Secret | None = None
    basic_auth: Secret | None = None
    allow_any_hostname: bool = False
    disable_trust_manager: bool = False
    #: Seconds to connect; None (unset or 0): no bound of our own, Twisted's
    #: HostnameEndpoint gives each connection attempt 30 s.
    connect_timeout: float | None = None
    #: Seconds without progress (no byte sent or received) before a request is given up;
    #: None (written 0): wait for ever, as dcm4chee does without ``dcmResponseTimeout``.
    response_timeout: float | None = 300.0
    ca_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_instances_per_request: int = 1
    max_request_bytes: int | None = None


@dataclass(frozen=True)
class WebApplication:
    """A remote web application (``dcmWebApp``): the STOW-RS destination."""

    name: str
    #: Service URL without ``/studies``, e.g. ``http://127.0.0.1:18080/stowrs``.
    url: str
    service_classes: tuple[str, ...] = ("STOW_RS",)
    properties: WebAppProperties = field(default_factory=WebAppProperties)
    description: str = ""
    installed: bool = True
    #: ID of a ``[keycloak-clients.ID]`` (dcm4chee ``dcmKeycloakClientID``): its access
    #: tokens are sent, ahead of ``bearer-token`` and ``basic-auth``.
    keycloak_client: str | None = None

    @property
    def studies_url(self) -> str:
        return self.url.rstrip("/") + "/studies"


@dataclass(frozen=True)
class KeycloakClient:
    """An OAuth 2.0 client (dcm4chee ``dcmKeycloakClient``) that fetches access tokens.

    ``token_url`` is the token endpoint: given as ``token-url``, or Keycloak's
    ``{url}/realms/{realm}/protocol/openid-connect/token`` from ``url`` (dcmURI) and
    ``realm`` (dcmKeycloakRealm).
    """

    name: str
    token_url: str
    client_id: str
    grant_type: str = "client_credentials"
    client_secret: Secret | None = None
    #: Resource owner (``uid``) and ``userPassword`` for the password grant.
    uid: str | None = None
    user_password: Secret | None = None
    url: str | None = None
    realm: str | None = None
    scope: str | None = None
    audience: str | None = None
    resource: str | None = None
    #: ``client_secret_basic`` (HTTP Basic) or ``client_secret_post`` (in the body).
    client_auth: str = "client_secret_basic"
    allow_any_hostname: bool = False
    disable_trust_manager: bool = False
    ca_file: Path | None = None
    #: A token is refreshed this many seconds before it expires (at most 20% of its life).
    refresh_skew: float = 30.0
    #: Seconds a token request may take.
    timeout: float = 30.0


@dataclass(frozen=True)
class BearerAuth:
    """JWT access-token validation for an endpoint (``[ingest]``; stowrsd's options).

    ``jwks`` is a JWKS file (absolute path) or URL; without it the keys are found
    through the issuer's discovery document. None = that claim is not checked.
    """

    issuer: str | None = None
    jwks: str | None = None
    audience: str | None = None
    required_scopes: tuple[str, ...] = ()
    leeway: float = 0.0


@dataclass(frozen=True)
class RestAuth:
    """``[rest.auth]``: who may use the REST listener (docs/rest-api.md#authentication).

    ``basic``: HTTP Basic against ``users`` (user name -> password hash from
    ``stowpair hash-password``); ``bearer``: JWT access tokens validated with
    ``bearer``. ``health``, ``metrics`` and ``console`` say whether ``/health``,
    ``/metrics`` and the console's files (``/ui/``, ``/``) need credentials too.
    """

    kind: Literal["basic", "bearer"]
    users: dict[str, str] = field(default_factory=dict)
    bearer: BearerAuth | None = None
    realm: str = "stowpair"
    health: Literal["open", "protected"] = "open"
    metrics: Literal["open", "protected"] = "protected"
    console: Literal["open", "protected"] = "protected"


@dataclass(frozen=True)
class Exporter:
    """An Exporter Descriptor (``dcmExporter``)."""

    exporter_id: str
    uri: str
    queue_name: str
    ae_title: str = "STOWPAIR"
    description: str = ""
    schedules: tuple[ScheduleExpression, ...] = ()
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def scheme(self) -> str:
        return self.uri.split(":", 1)[0]

    @property
    def webapp_name(self) -> str:
        return self.uri.split(":", 1)[1] if ":" in self.uri else ""

    @property
    def destination(self) -> str:
        """The part after the scheme: a web app name (``stow:``) or an AE title
        (``dicom:``)."""
        return self.webapp_name


@dataclass(frozen=True)
class Queue:
    """A task queue (``dcmQueue``). Durations in seconds; None = no cap / keep forever."""

    name: str
    max_tasks_parallel: int = 1
    max_retries: int = 10
    retry_delay: float = 30.0
    max_retry_delay: float | None = 600.0
    retry_delay_multiplier: int = 200
    retry_on_warning: bool = False
    schedules: tuple[ScheduleExpression, ...] = ()
    purge_completed_delay: float | None = 86400.0
    purge_failed_delay: float | None = None
    purge_warning_delay: float | None = None
    purge_canceled_delay: float | None = None
    installed: bool = True
    #: dcm4chee ``dicomDescription``, shown by ``GET /queue``.
    description: str = ""


@dataclass(frozen=True)
class Condition:
    """``Attribute=v1|v2`` (or ``Attribute!=...``) on a received instance."""

    attribute: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass(frozen=True)
class ExportRule:
    """An Export Rule (``dcmExportRule``) fired when instances are received."""

    name: str
    entity: Entity
    exporter_ids: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    delay: float = 0.0
    schedules: tuple[ScheduleExpression, ...] = ()


@dataclass(frozen=True)
class DimseConfig:
    """The DICOM C-STORE SCP of the archive (``[dimse]``); see docs/dimse.md.

    Timeouts are seconds (None: wait forever); ``max_pdu_length`` 0 means no limit.
    ``tls_ca`` set means client certificates signed by it are required.
    """

    enabled: bool = False
    listener: Listener = field(default_factory=lambda: Listener(port=11112))
    ae_title: str = "STOWPAIR"
    #: Calling AE titles allowed to associate; empty = any.
    accepted_calling_aets: tuple[str, ...] = ()
    max_associations: int = 10
    max_pdu_length: int = 131072
    acse_timeout: float | None = 30.0
    dimse_timeout: float | None = 60.0
    network_timeout: float | None = 60.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None


@dataclass(frozen=True)
class RemoteAE:
    """A remote DICOM Application Entity (dcm4chee: ``dicomNetworkAE`` and the
    ``dicomNetworkConnection`` it references): a ``dicom:<AE title>`` destination."""

    ae_title: str
    host: str
    port: int
    tls: bool = False
    #: CA certificates (PEM) to trust instead of the system store; TLS only.
    ca_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_pdu_length: int = 131072
    connect_timeout: float | None = 10.0
    #: Seconds to wait for the A-ASSOCIATE answer and for each C-STORE response.
    response_timeout: float | None = 60.0
    description: str = ""
    installed: bool = True


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``source`` is the file it came from (for messages)."""

    source: Path | None = None
    #: Folder that relative paths were resolved against (absolute; None = not loaded).
    base_dir: Path | None = None
    device: Device = field(default_factory=Device)
    rest: Listener = field(default_factory=Listener)
    emulator: EmulatorConfig = field(default_factory=EmulatorConfig)
    archive: ArchivePaths = field(default_factory=ArchivePaths)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    #: JSON log file; None disables it ("-" in the file).
    json_log: Path | None = Path("var/log/stowpair.json")
    #: Seconds between queue polls (dcm4chee dcmTaskPollingInterval).
    task_polling_interval: float = 5.0
    #: Load a generated demo study at start when the archive is empty.
    demo_on_empty: bool = False
    webapps: dict[str, WebApplication] = field(default_factory=dict)
    exporters: dict[str, Exporter] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    rules: tuple[ExportRule, ...] = ()
    keycloak_clients: dict[str, KeycloakClient] = field(default_factory=dict)
    #: Bearer-token validation of the archive's STOW-RS ingest endpoint; None = open.
    ingest_auth: BearerAuth | None = None
    #: Authentication of the REST listener; None = none (loopback only, or ``insecure``).
    rest_auth: RestAuth | None = None
    #: ``[rest] insecure``: listen on a non-loopback address without authentication.
    rest_insecure: bool = False
    dimse: DimseConfig = field(default_factory=DimseConfig)
    #: Remote AEs by AE title: destinations of ``dicom:<AE title>`` exporters.
    remote_aes: dict[str, RemoteAE] = field(default_factory=dict)
