"""The lab database (primary at the primary DC, synchronous standby at the DR DC), set up
once per test session with playbooks/database.yml and shared by the backup and drill tests.
`lab up` starts with empty backup storage, so no --fresh is needed (or wanted: it would
empty the repositories under a database that the provisioning test may have built)."""

from __future__ import annotations

from typing import Any

from socctl.config import Settings

_STATE: dict[str, Any] = {}


def database(settings: Settings) -> dict[str, Any]:
    from socctl.backup import ops

    if "setup" not in _STATE:
        out = ops.setup_lab(settings)
        assert out["playbook"]["succeeded"], out["playbook"]["output_tail"]
        _STATE["setup"] = out
    return dict(_STATE["setup"])
