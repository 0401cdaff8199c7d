"""The processing pipeline from Sigma's view of our logs to the store's ``events`` table.

Rules are written with ECS field names (``source.ip``, ``url.original``) and a logsource
(``product: linux, service: sshd``). The store (contract with the collector work, #6) keeps
one row per event with the ECS fields as columns named with dots replaced by underscores and
``event.dataset`` in ``dataset``. This pipeline is the one place that knows both sides:

* a logsource becomes a condition on ``dataset`` (a rule for sshd never reads nginx rows),
* every ECS field maps to its column; a field with no column is a located error at load
  time, never a query that silently matches nothing (Zircolite's failure mode),
* ``%name%`` placeholders (``|expand``) become ``IN (SELECT value FROM lookup_name)``.
"""

from __future__ import annotations

from dataclasses import dataclass


def _field_columns() -> dict[str, str]:
    from socctl.store.sqlite import COLUMN_OF

    columns = {"@timestamp": "ts", "event.ingested": "ingested", "event.dataset": "dataset",
               "log.original": "message", **COLUMN_OF}
    # Rules may name e-mail addresses the short ECS way too.
    columns["email.from"] = COLUMN_OF["email.from.address"]
    columns["email.to"] = COLUMN_OF["email.to.address"]
    return columns


#: ECS field -> column of ``events`` (socctl.store.sqlite owns the schema).
FIELD_COLUMNS: dict[str, str] = _field_columns()


@dataclass(frozen=True, slots=True)
class Logsource:
    """A Sigma logsource we support and the datasets (event.dataset) it reads."""

    product: str | None
    category: str | None
    service: str | None
    datasets: tuple[str, ...]

    def describe(self) -> str:
        parts = [f"{k}: {v}" for k, v in (("product", self.product),
                 ("category", self.category), ("service", self.service)) if v]
        return ", ".join(parts)


#: Every logsource a rule may name. An empty dataset tuple means "all datasets".
LOGSOURCES: tuple[Logsource, ...] = (
    Logsource("linux", None, "sshd", ("sshd",)),
    Logsource("linux", None, "auth", ("syslog", "sshd")),
    Logsource(None, "webserver", None, ("nginx.access", "apache.access")),
    Logsource("nginx", None, "error", ("nginx.error",)),
    Logsource(None, "firewall", None, ("netfilter",)),
    Logsource("postgresql", None, None, ("postgresql",)),
    Logsource("postfix", None, None, ("postfix",)),
    Logsource("clamav", None, None, ("clamav",)),
    Logsource("amavis", None, None, ("amavis",)),
    Logsource(None, "email", None, ("postfix", "clamav", "amavis")),
    Logsource("cisco", None, "ios", ("cisco_ios",)),
    Logsource(None, "network_connection", None, ()),
)


def find_logsource(product: str | None, category: str | None,
                   service: str | None) -> Logsource | None:
    for ls in LOGSOURCES:
        if (ls.product, ls.category, ls.service) == (product, category, service):
            return ls
    return None


def lookup_table(name: str) -> str:
    """The SQLite table holding the values of the ``%name%`` placeholder."""
    return f"lookup_{name}"


def build_pipeline() -> object:
    """The pySigma ProcessingPipeline (typed as object: pySigma ships no stubs we trust)."""
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        AddConditionTransformation,
        FieldMappingTransformation,
        QueryExpressionPlaceholderTransformation,
    )

    mapping: dict[str | None, str | list[str]] = dict(FIELD_COLUMNS.items())
    items: list[ProcessingItem] = []
    for ls in LOGSOURCES:
        if not ls.datasets:
            continue
        value: str | list[str] = ls.datasets[0] if len(ls.datasets) == 1 else list(ls.datasets)
        items.append(ProcessingItem(
            identifier=f"socctl_dataset_{ls.describe()}",
            transformation=AddConditionTransformation({"event.dataset": value}),
            rule_conditions=[LogsourceCondition(product=ls.product, category=ls.category,
                                                service=ls.service)],
        ))
    items.append(ProcessingItem(
        identifier="socctl_lookups",
        transformation=QueryExpressionPlaceholderTransformation(
            expression="{field} IN (SELECT value FROM lookup_{id})"),
    ))
    items.append(ProcessingItem(
        identifier="socctl_ecs_to_columns",
        transformation=FieldMappingTransformation(mapping),
    ))
    return ProcessingPipeline(name="socctl ECS to events table", priority=20, items=items)
