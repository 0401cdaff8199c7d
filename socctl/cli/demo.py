"""socctl demo: the main job a new user runs first (README's first command)."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import click

from socctl.cli import render
from socctl.cli.main import AppContext
from socctl.demo import run_demo


@click.command("demo")
@click.option("--keep-lab/--no-keep-lab", default=True, show_default=True,
              help="Leave the lab running afterwards, to explore it.")
@click.pass_obj
def command(app: AppContext, keep_lab: bool) -> None:
    """Check the national inventory, build the lab, show failover; print what happened."""
    steps = []
    marks = {"ok": ("ok", "green"), "skipped": ("skipped", "yellow"),
             "failed": ("FAILED", "red")}
    live = render.console.is_terminal and not render.is_json()
    # in a terminal, a spinner names the step under way (some take minutes)
    with render.console.status("starting", spinner="dots") if live else nullcontext() as spin:
        def starting(name: str) -> None:
            if spin is not None:
                spin.update(f"{name} ...")

        for step in run_demo(app.settings, keep_lab=keep_lab, starting=starting):
            steps.append(step)
            if not render.is_json():
                word, style = marks[step.status]
                render.console.print(render.styled(
                    (f"{word:>9}", style), f" {step.name:<18} {step.detail} ",
                    (f"({step.seconds:.1f} s)", "dim")), highlight=False)
    if render.is_json():
        render.emit_json([s.to_dict() for s in steps])
    elif keep_lab and any(s.name == "lab up" and s.status == "ok" for s in steps):
        render.console.print("The lab is still up: 'socctl lab status', 'socctl lab ssh "
                             "p01-rtr1', 'socctl lab down' to remove it.")
    if any(s.status == "failed" for s in steps):
        sys.exit(1)
