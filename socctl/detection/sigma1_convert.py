"""Elasticsearch conversion, run by the isolated pySigma 1.x interpreter (not imported).

sigma-cli 3.1 and pysigma-backend-elasticsearch 2.1 need pySigma < 2, while the engine
needs pySigma 2 (keyword rules in the SQLite backend). So this file runs as a script in
its own venv (``./dev`` builds ``.venv-sigma1``) and imports nothing from socctl: it reads
the rule folder, the lookups and the offline ATT&CK data, and prints the converted rules.

Usage: python sigma1_convert.py RULES_DIR TARGET MITRE_JSON CACHE_DIR
"""

import json
import sys
from pathlib import Path

# logsource -> event.dataset values; mirrors socctl.detection.pipeline.LOGSOURCES.
LOGSOURCES = [
    ({"product": "linux", "service": "sshd"}, ["sshd"]),
    ({"product": "linux", "service": "auth"}, ["syslog", "sshd"]),
    ({"category": "webserver"}, ["nginx.access", "apache.access"]),
    ({"product": "nginx", "service": "error"}, ["nginx.error"]),
    ({"category": "firewall"}, ["netfilter"]),
    ({"product": "postgresql"}, ["postgresql"]),
    ({"product": "postfix"}, ["postfix"]),
    ({"product": "clamav"}, ["clamav"]),
    ({"product": "amavis"}, ["amavis"]),
    ({"category": "email"}, ["postfix", "clamav", "amavis"]),
    ({"product": "cisco", "service": "ios"}, ["cisco_ios"]),
]
INDEX = "logs-socctl-*"


def pipeline(lookups):
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        AddConditionTransformation,
        ValueListPlaceholderTransformation,
    )

    items = []
    for i, (ls, datasets) in enumerate(LOGSOURCES):
        value = datasets[0] if len(datasets) == 1 else datasets
        items.append(ProcessingItem(
            identifier=f"socctl_dataset_{i}",
            transformation=AddConditionTransformation({"event.dataset": value}),
            rule_conditions=[LogsourceCondition(**ls)],
        ))
    items.append(ProcessingItem(identifier="socctl_lookups",
                                transformation=ValueListPlaceholderTransformation()))
    return ProcessingPipeline(name="socctl ECS (Elasticsearch)", priority=20, items=items,
                              vars=lookups)


def load(rules_dir):
    """Plain rules first, then correlations: pySigma 1.5.1 fails on a correlation read
    before the rules it references."""
    import yaml
    from sigma.collection import SigmaCollection

    docs = []
    for path in sorted(rules_dir.rglob("*.yml")):
        rel = path.relative_to(rules_dir).parts
        if path.name.endswith(".tests.yml") or rel[0] in ("suppressions", "lookups"):
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.pop("socctl", None)
        docs.append(data)
    docs.sort(key=lambda d: "correlation" in d)
    collection = SigmaCollection.from_dicts(docs)
    collection.resolve_rule_references()
    return collection


def lookups_of(rules_dir):
    out = {}
    for path in sorted((rules_dir / "lookups").glob("*.txt")):
        values = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
        out[path.stem] = [v for v in values if v]
    return out


def main(argv):
    rules_dir, target, mitre, cache = Path(argv[1]), argv[2], argv[3], argv[4]
    from sigma.data import mitre_attack

    mitre_attack.set_cache_dir(cache)
    mitre_attack.set_url(mitre)
    from sigma.backends.elasticsearch import (
        EqlBackend,
        ESQLBackend,
        LuceneBackend,
    )

    lookups = lookups_of(rules_dir)
    out, skipped = [], []
    if target == "kibana-ndjson":
        # Plain rules as Lucene detection rules, correlations as ES|QL rules (Lucene has
        # none): one NDJSON line per rule, importable through the detection engine's
        # rules import (Kibana: Security > Rules > Import, or POST _import).
        parts = [
            convert(LuceneBackend(pipeline(lookups), index_names=[INDEX]), rules_dir,
                    "siem_rule_ndjson", plain=True),
            convert(ESQLBackend(pipeline(lookups)), rules_dir, "siem_rule_ndjson",
                    plain=False),
        ]
        for queries, errors in parts:
            skipped += errors
            for item in queries:
                for rule in item if isinstance(item, list) else [item]:
                    out.append(json.dumps(rule, sort_keys=True))
    else:
        backend = {"es-lucene": lambda: LuceneBackend(pipeline(lookups), index_names=[INDEX]),
                   "esql": lambda: ESQLBackend(pipeline(lookups)),
                   "eql": lambda: EqlBackend(pipeline(lookups))}[target]()
        queries, skipped = convert(backend, rules_dir, "default", plain=None)
        out = [str(q) for q in queries]
    json.dump({"output": out, "skipped": skipped}, sys.stdout)


def convert(backend, rules_dir, fmt, plain):
    """Convert rule by rule so one unsupported rule is reported, not fatal."""
    from sigma.rule import SigmaRule

    collection = load(rules_dir)
    backend.init_processing_pipeline(fmt)
    queries, skipped = [], []
    for rule in collection.rules:
        is_plain = isinstance(rule, SigmaRule)
        kind = getattr(getattr(rule, "type", None), "name", "").lower()
        if fmt == "default" and type(backend).__name__ == "EqlBackend" and kind in (
                "value_count", "temporal_ordered"):
            # pysigma-backend-elasticsearch 2.1.1 emits a sequence that counts events, not
            # distinct values, and a malformed temporal_ordered query: refuse, loudly.
            skipped.append({"id": str(rule.id), "title": rule.title,
                            "reason": f"EQL output for {kind} is incorrect in the backend"})
            continue
        try:
            if is_plain and plain is False:
                backend.convert_rule(rule, fmt)  # correlations read the result; not output
            elif plain is True and not is_plain:
                continue
            elif is_plain:
                queries.extend(backend.convert_rule(rule, fmt))
            else:
                queries.extend(backend.convert_correlation_rule(rule, fmt))
        except Exception as exc:  # every backend refusal is reported per rule
            skipped.append({"id": str(rule.id), "title": rule.title,
                            "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"})
    return backend.finalize(queries, fmt), skipped


if __name__ == "__main__":
    main(sys.argv)
