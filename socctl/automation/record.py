"""The JSON record of each provisioning run, kept under the state directory.

Who ran what, when, on which selection, and how every host ended: the audit trail a
change board asks for. It holds no secret (results of no_log tasks are censored by
Ansible and only task messages are kept).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from socctl.automation.result import ProvisionResult


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "provision" / "runs"


def write_record(state_dir: Path, result: ProvisionResult) -> Path:
    folder = runs_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = result.started.replace(":", "").replace("-", "").split(".")[0]
    mode = "check" if result.check else "apply"
    path = folder / f"{stamp}-{Path(result.playbook).stem}-{mode}.json"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{Path(result.playbook).stem}-{mode}-{n}.json"
    result.record = str(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out, indent=2, ensure_ascii=False)
        out.write("\n")
    return path
