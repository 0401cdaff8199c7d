"""socctl demo: the first thing a new user runs (see README)."""

from __future__ import annotations

import click

from socctl.cli.main import AppContext


@click.command("demo")
@click.pass_obj
def command(app: AppContext) -> None:
    """Placeholder, replaced below."""
