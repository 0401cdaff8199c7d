"""``socctl detect convert``: the rules for SQLite or an Elasticsearch deployment.

Two pySigma generations are needed (see README, "Detections"): the engine and the
``sqlite`` target run on pySigma 2 in socctl's own environment; the Elasticsearch targets
need pysigma-backend-elasticsearch 2.1.1, which requires pySigma 1.x, so they run in an
isolated venv (``.venv-sigma1``, built by ``./dev``) through ``sigma1_convert.py``. Their
output is also committed in ``detections/.converted/`` with a digest of its inputs, so a
deployment without that venv still gets them, and the tests prove they are current.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socctl.detection.loader import LOOKUP_DIR, MITRE_DATA, rule_files
from socctl.errors import Location, ToolError

ES_TARGETS = ("es-lucene", "esql", "eql", "kibana-ndjson")
TARGETS = ("sqlite", *ES_TARGETS)
SCRIPT = Path(__file__).with_name("sigma1_convert.py")
CONVERTED_DIR = ".converted"


@dataclass(frozen=True)
class Conversion:
    target: str
    output: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)
    source: str = "live"  # live | committed

    def text(self) -> str:
        sep = "\n" if self.target == "kibana-ndjson" else "\n\n"
        return sep.join(self.output) + "\n"


def inputs_digest(rules: Path) -> str:
    """Everything an Elasticsearch conversion depends on: rules, lookups, ATT&CK data,
    the converter script."""
    h = hashlib.sha256()
    files = [*rule_files(rules), *sorted((rules / LOOKUP_DIR).glob("*.txt")),
             rules / MITRE_DATA, SCRIPT]
    for path in files:
        if path.exists():
            rel = path.name if path == SCRIPT else str(path.relative_to(rules))
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def sigma1_python(project_root: Path | None = None) -> Path | None:
    env = os.environ.get("SOCCTL_SIGMA1_PYTHON")
    if env:
        return Path(env)
    root = project_root or Path(__file__).resolve().parents[2]
    candidate = root / ".venv-sigma1" / "bin" / "python"
    return candidate if candidate.exists() else None


def convert_live(rules: Path, target: str, python: Path, cache_dir: Path) -> Conversion:
    proc = subprocess.run(
        [str(python), str(SCRIPT), str(rules), target, str(rules / MITRE_DATA),
         str(cache_dir)], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ToolError(f"conversion to {target} failed: {tail}", Location.of(rules))
    data = json.loads(proc.stdout)
    return Conversion(target, data["output"], data["skipped"])


def convert_sqlite(rules: Path) -> Conversion:
    """Plain SQLite queries over the ``events`` table (correlations as one query each;
    socctl itself runs correlations through the backend's plan instead)."""
    from socctl.detection.engine import _backend, _closure, _collection
    from socctl.detection.loader import load_rules

    ruleset = load_rules(rules)
    plain = [r for r in ruleset.rules if r.kind == "event"]
    by_ref = {**{r.id: r for r in ruleset.rules},
              **{r.name: r for r in ruleset.rules if r.name}}
    queries = [f"-- {r.title} ({r.id})\n" + str(_backend("events").convert(_collection([r]))[0])
               for r in plain if not _referenced_only(r, ruleset.rules)]
    for rule in ruleset.rules:
        if rule.kind == "correlation":
            # Each correlation with just what it references, so one that another
            # correlation references is still output on its own.
            out = _backend("events").convert(_collection(_closure(rule, by_ref)))
            queries.append(f"-- {rule.title} ({rule.id})\n{out[-1]}")
    return Conversion("sqlite", [q if q.endswith(";") else q + ";" for q in queries])


def _referenced_only(rule: Any, rules: Any) -> bool:
    """A building block of a correlation (Sigma's generate: false)."""
    refs = {ref.reference for r in rules if r.kind == "correlation" for ref in r.sigma.rules}
    return rule.name in refs or rule.id in refs


def committed_path(rules: Path, target: str) -> Path:
    return rules / CONVERTED_DIR / f"{target}.json"


def load_committed(rules: Path, target: str) -> tuple[Conversion, str]:
    path = committed_path(rules, target)
    if not path.exists():
        raise ToolError(f"no committed {target} conversion", Location.of(path),
                        hint="run ./dev (builds .venv-sigma1) then "
                             "'socctl detect convert --refresh'")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Conversion(target, data["output"], data["skipped"], "committed"), data["digest"]


def refresh_committed(rules: Path, python: Path, cache_dir: Path) -> list[Path]:
    """Rewrite every committed Elasticsearch conversion from the live converter."""
    digest = inputs_digest(rules)
    written = []
    for target in ES_TARGETS:
        conv = convert_live(rules, target, python, cache_dir)
        path = committed_path(rules, target)
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {"target": target, "digest": digest, "output": conv.output,
                                "skipped": conv.skipped}
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        written.append(path)
    return written


def convert(rules: Path, target: str, *, live: bool | None = None,
            cache_dir: Path | None = None) -> Conversion:
    if target not in TARGETS:
        raise ToolError(f"unknown target {target!r}; valid: {', '.join(TARGETS)}")
    if target == "sqlite":
        return convert_sqlite(rules)
    python = sigma1_python()
    cache = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")
                              ) / "socctl" / "pysigma1"
    if live or (live is None and python is not None):
        if python is None:
            raise ToolError("the pySigma 1.x environment is missing (.venv-sigma1)",
                            hint="run ./dev test or set SOCCTL_SIGMA1_PYTHON")
        return convert_live(rules, target, python, cache)
    conv, digest = load_committed(rules, target)
    if digest != inputs_digest(rules):
        raise ToolError(f"the committed {target} conversion is stale (rules changed since)",
                        Location.of(committed_path(rules, target)),
                        hint="run 'socctl detect convert --refresh' with .venv-sigma1")
    return conv




_CHECK = """
import sys
from sigma.data import mitre_attack
mitre_attack.set_cache_dir(sys.argv[2])
mitre_attack.set_url(sys.argv[1])
from sigma.cli.main import main
sys.argv = ["sigma", "check", "--fail-on-issues", "-x", "d3_fendtag", sys.argv[3]]
main()
"""


def sigma_cli_check(rules: Path, python: Path, cache_dir: Path) -> tuple[bool, str]:
    """``sigma check`` (sigma-cli 3.1) over the rules, offline, as one directory.

    sigma-cli loses correlation references when given several files, and reads every
    *.yml: so the rule files alone are copied into a temporary tree. The D3FEND tag
    validator is excluded (it downloads its ontology; no rule uses D3FEND tags).
    """
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="socctl-sigma-check-") as tmp:
        root = Path(tmp) / "rules"
        for path in rule_files(rules):
            target = root / path.relative_to(rules)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        proc = subprocess.run(
            [str(python), "-c", _CHECK, str(rules / MITRE_DATA), str(cache_dir), str(root)],
            capture_output=True, text=True, timeout=600, check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr
