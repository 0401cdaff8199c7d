"""Collector definitions (content in ``collectors/``): source -> parser -> ECS mapping.

``collectors/collect.yaml`` holds the pipeline settings (store, spool, sink, enrichment);
``collectors/sources/*.yaml`` holds one collector each: where lines come from, which
dataset parses them (with options such as PostgreSQL's log_line_prefix), and the static
ECS fields every event of that collector gets. Loading collects every problem with its
file, line and field, then cross-file checks run (unique names, free ports, list files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from socctl.collector.parsers import PARSERS
from socctl.content import error, line_of, load_yaml, validate
from socctl.errors import Location, Problem, Severity, ValidationFailed

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Namespace = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
EcsField = Annotated[str, Field(pattern=r"^[a-z@_][a-z0-9_]*(\.[a-z0-9_]+)*$")]
SourceType = Literal["syslog_udp", "syslog_tcp", "syslog_tls", "relp", "file", "snmp_trap"]
CONNECTION_TYPES = frozenset({"syslog_tcp", "syslog_tls", "relp"})
TLS_TYPES = frozenset({"syslog_tls", "relp"})
"""Sources that take tls_cert/tls_key (relp: RELP over TLS when they are set)."""
"""Sources whose senders hold connections (capped by ``max_connections``)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_zone(value: str | None) -> str | None:
    if value is not None:
        from socctl.collector.syslog import zone_named

        zone_named(value)  # ValueError: unknown time zone ...
    return value


TimeZone = Annotated[str, AfterValidator(_check_zone)]
"""Where times written without a zone were written: UTC, local (the collector host's
zone) or an IANA name (Asia/Ho_Chi_Minh)."""


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen must be ADDRESS:PORT, got {value!r}")
    try:
        ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"listen address {host!r} is not an IP address") from None
    return value


HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")]
"""A host name, or ``local``: the host the collector runs on."""


def local_host_name() -> str:
    """This host's short name, as rsyslog writes it in the lines it logs."""
    import socket

    return socket.gethostname().split(".", 1)[0]


class Source(Strict):
    type: SourceType
    listen: str | None = None
    framing: Literal["auto", "octet", "newline"] = "auto"
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    paths: tuple[str, ...] = ()
    start_at: Literal["beginning", "end"] = "beginning"
    max_line: Annotated[int, Field(ge=256, le=1 << 20)] = 65536
    max_connections: Annotated[int, Field(ge=1, le=1 << 16)] = 4096
    """TCP/TLS/RELP: connections open at once; more are closed at accept and counted."""
    snmp_communities: tuple[str, ...] = ()
    snmp_users_env: str | None = None
    host_name: HostName | None = None
    """File sources whose lines name no host (clamd's LogFile, PostgreSQL's log): the
    host.name of their events; ``local`` is the host the collector runs on (its short
    name). A line that names its host keeps it."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        return None if value is None else _check_listen(value)

    @field_validator("tls_cert", "tls_key", "tls_client_ca")
    @classmethod
    def _tls_here(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if value is not None and kind is not None and kind not in TLS_TYPES:
            raise ValueError(f"a {kind} source does not speak TLS (TLS is for "
                             f"{' and '.join(sorted(TLS_TYPES))})")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Source:
        if self.host_name is not None and self.type != "file":
            raise ValueError(f"host_name is for file sources (a {self.type} source's "
                             "lines come with their sender)")
        if self.type == "file":
            if not self.paths:
                raise ValueError("a file source needs paths")
        elif self.listen is None:
            raise ValueError(f"a {self.type} source needs listen: ADDRESS:PORT")
        if self.type == "syslog_tls" and not (self.tls_cert and self.tls_key):
            raise ValueError("a syslog_tls source needs tls_cert and tls_key")
        tls = self.tls_cert or self.tls_key or self.tls_client_ca
        if self.type == "relp" and tls and not (self.tls_cert and self.tls_key):
            raise ValueError("RELP over TLS needs both tls_cert and tls_key")
        return self


class Parser(Strict):
    # Option values keep their spaces: PostgreSQL's log_line_prefix nearly always ends
    # with one ("... client=%h "), and with it stripped no line of that server parsed.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    dataset: str
    options: dict[str, str] = {}
    routes: dict[str, str] = {}
    timezone: TimeZone | None = None
    """This collector's devices' zone, when it differs from collect.yaml's."""

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        value = value.strip()
        if value not in PARSERS:
            raise ValueError(f"unknown dataset {value!r} (valid: {', '.join(PARSERS)})")
        return value

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, str]) -> dict[str, str]:
        for program, dataset in value.items():
            if dataset not in PARSERS:
                raise ValueError(f"route {program!r}: unknown dataset {dataset!r} "
                                 f"(valid: {', '.join(PARSERS)})")
        return value

    @model_validator(mode="after")
    def _options(self) -> Parser:
        allowed = {"postgresql": {"log_line_prefix"}}.get(self.dataset, set())
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} for dataset {self.dataset} "
                             f"(valid: {', '.join(sorted(allowed)) or 'none'})")
        if "log_line_prefix" in self.options:
            from socctl.collector.parsers.postgresql import compile_prefix
            compile_prefix(self.options["log_line_prefix"])
        return self


class Ecs(Strict):
    namespace: Namespace = "default"
    fields: dict[EcsField, str | int | bool] = {}


class CollectorFile(Strict):
    name: Name
    description: str = ""
    enabled: bool = True
    source: Source
    parser: Parser
    ecs: Ecs = Ecs()


class StoreSettings(Strict):
    path: str = "events.db"
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 90


class SpoolSettings(Strict):
    path: str = "spool"
    max_bytes: Annotated[int, Field(ge=1 << 16)] = 256 << 20
    segment_bytes: Annotated[int, Field(ge=1 << 12)] = 16 << 20
    when_full: Literal["block"] = "block"
    batch: Annotated[int, Field(ge=1, le=100_000)] = 2000


class ElasticsearchSettings(Strict):
    url: str = "https://localhost:9200"
    ca_certs: str | None = None
    verify_certs: bool = True
    api_key_env: str = "SOCCTL_ES_API_KEY"
    username_env: str = "SOCCTL_ES_USERNAME"
    password_env: str = "SOCCTL_ES_PASSWORD"
    max_retries: Annotated[int, Field(ge=0, le=20)] = 5
    chunk_size: Annotated[int, Field(ge=1, le=10_000)] = 1000


class Enrichment(Strict):
    inventory_profile: str = "national"
    botnet_list: str | None = None
    botnet_provider: str = "NCSC"
    botnet_reload_seconds: Annotated[float, Field(ge=1, le=86400)] = 60
    """How often a running collector looks whether the list's file was replaced."""


class CollectFile(Strict):
    sink: Literal["sqlite", "elasticsearch"] = "sqlite"
    timezone: TimeZone = "local"
    store: StoreSettings = StoreSettings()
    spool: SpoolSettings = SpoolSettings()
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()
    enrichment: Enrichment = Enrichment()


@dataclass(frozen=True)
class Collector:
    """One validated collector definition."""

    name: str
    spec: CollectorFile
    path: Path
    timezone: str = "local"
    """The zone of times its lines write without one (its own, or collect.yaml's)."""

    @property
    def dataset(self) -> str:
        return self.spec.parser.dataset

    @property
    def location(self) -> Location:
        return Location.of(self.path)


@dataclass(frozen=True)
class Collection:
    folder: Path
    settings: CollectFile
    collectors: dict[str, Collector] = field(default_factory=dict)

    def get(self, name: str) -> Collector:
        if name not in self.collectors:
            from difflib import get_close_matches

            from socctl.errors import ContentError

            close = get_close_matches(name, list(self.collectors), n=3)
            hint = (f"did you mean {', '.join(close)}? " if close else "") + \
                f"valid: {', '.join(sorted(self.collectors))}"
            raise ContentError(f"no collector named {name!r}", Location.of(self.folder),
                               hint=hint)
        return self.collectors[name]

    def resolve(self, relative: str) -> Path:
        """A path in collect.yaml: absolute, or relative to the collectors folder."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.folder / path


def build_collection(folder: Path) -> tuple[Collection | None, list[Problem]]:
    """Load and check every file; returns the collection (``None`` on errors) and problems."""
    problems: list[Problem] = []
    if not folder.is_dir():
        return None, [error(Location.of(folder), "collectors folder not found")]
    settings = CollectFile()
    main = folder / "collect.yaml"
    main_data: Any = None
    if main.is_file():
        data, found = load_yaml(main, empty_ok=True)
        problems += found
        main_data = data
        if data is not None:
            parsed, found = validate(CollectFile, data, main)
            problems += found
            settings = parsed or settings
    collectors: dict[str, Collector] = {}
    listens: dict[tuple[str, str], Path] = {}
    for path in sorted((folder / "sources").glob("*.yaml")):
        data, found = load_yaml(path)
        problems += found
        if data is None:
            continue
        spec, found = validate(CollectorFile, data, path)
        problems += found
        if spec is None:
            continue
        if spec.name in collectors:
            problems.append(error(
                Location.of(path, line_of(data, ("name",)), "name"),
                f"duplicate collector name {spec.name!r} (also in "
                f"{collectors[spec.name].path.name})"))
            continue
        if spec.source.listen and spec.enabled:
            proto = "udp" if spec.source.type in ("syslog_udp", "snmp_trap") else "tcp"
            key = (proto, spec.source.listen)
            if key in listens:
                problems.append(error(
                    Location.of(path, line_of(data, ("source", "listen")), "source.listen"),
                    f"{proto} {spec.source.listen} is already used by {listens[key].name}"))
            listens[key] = path
        collectors[spec.name] = Collector(spec.name, spec, path,
                                          spec.parser.timezone or settings.timezone)
    if not collectors and not any(p.severity is Severity.ERROR for p in problems):
        problems.append(error(Location.of(folder / "sources"), "no collector definitions"))
    collection = Collection(folder, settings, collectors)
    enrichment = main_data.get("enrichment") if isinstance(main_data, dict) else None
    botnet = enrichment.get("botnet_list") if isinstance(enrichment, dict) else None
    if isinstance(botnet, str) and botnet:
        from socctl.collector.enrich import BotnetList

        path = collection.resolve(botnet)
        if not path.is_file():
            problems.append(error(
                Location.of(main, line_of(main_data, ("enrichment", "botnet_list")),
                            "enrichment.botnet_list"), f"botnet list {path} not found"))
        else:
            problems += BotnetList.load(path)[1]
    if any(p.severity is Severity.ERROR for p in problems):
        return None, problems
    return collection, problems


def load_collection(folder: Path) -> Collection:
    collection, problems = build_collection(folder)
    if collection is None:
        raise ValidationFailed(f"collectors {folder}", problems)
    return collection


def static_fields(spec: CollectorFile) -> dict[str, Any]:
    """The ECS fields every event of the collector gets unless its line sets them."""
    fields: dict[str, Any] = dict(spec.ecs.fields)
    host = spec.source.host_name
    if host is not None:
        fields.setdefault("host.name", local_host_name() if host == "local" else host)
    return fields
