"""Root command group: global options and the one error boundary of socctl."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from socctl.config import Settings, load_settings
from socctl.errors import SocctlError


@dataclass
class AppContext:
    """Per-invocation state handed to every command; settings resolve on first use."""

    config_path: Path | None
    output: str
    debug: bool
    verbosity: int
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


class SocctlGroup(click.Group):
    """Turns library errors into one located line and a non-zero exit.

    ``--debug`` lets the traceback through instead.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SocctlError as exc:
            if _debug(ctx):
                raise
            _fail(exc)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:
            if _debug(ctx):
                raise
            from socctl.store.sqlite import StoreBusy, is_busy

            if is_busy(exc):  # a store held by another writer is no bug: retry later
                _fail(StoreBusy.at(None, exc))
            from socctl.cli.render import err_console, styled

            err_console.print(styled(("internal error", "red"), f": {type(exc).__name__}: {exc} "
                                     "(run with --debug for the traceback)"), highlight=False)
            sys.exit(70)


def _fail(exc: SocctlError) -> NoReturn:
    from socctl.cli.render import err_console, styled

    err_console.print(styled(("error", "red"), f": {exc}"), highlight=False, soft_wrap=True)
    problems = getattr(exc, "problems", None)
    if problems and len(problems) > 1:
        err_console.print(f"({len(problems)} problems; run the matching "
                          "'check' command to list them all)", highlight=False)
    sys.exit(exc.exit_code)


def _debug(ctx: click.Context) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False))


@click.group(cls=SocctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file (default: ./socctl.toml if present; SOCCTL_* env overrides).")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table for people, json (stable) for scripts.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="socctl")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, output: str, debug: bool,
        verbose: int, quiet: bool) -> None:
    """socctl: provision, watch and recover the agency's infrastructure."""
    verbosity = -1 if quiet else verbose
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    from socctl.cli.render import PrintableFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s",
                                            tracebacks=debug or level <= logging.DEBUG))
    logging.basicConfig(level=level, handlers=[handler])
    ctx.obj = AppContext(config_path=config_path, output=output, debug=debug,
                         verbosity=verbosity)


def _register() -> None:
    from socctl.cli import (
        alerts,
        backup,
        collect,
        demo,
        detect,
        drill,
        events,
        inventory,
        lab,
        net,
        provision,
    )

    cli.add_command(inventory.group)
    cli.add_command(lab.group)
    cli.add_command(net.group)
    cli.add_command(demo.command)
    cli.add_command(detect.group)
    cli.add_command(alerts.group)
    cli.add_command(collect.group)
    cli.add_command(events.group)
    cli.add_command(backup.group)
    cli.add_command(drill.group)
    cli.add_command(provision.command)
    _output_everywhere(cli)


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(AppContext)  # made by the root command, shared by its children
    if value is not None and app is not None:
        app.output = value


def _passes_options_through(command: click.Command) -> bool:
    """Commands whose trailing arguments are another program's (``lab exec``, ``lab
    ssh``): an ``-o`` there is ssh's, not ours."""
    return any(isinstance(p, click.Argument) and p.nargs == -1
               and isinstance(p.type, type(click.UNPROCESSED)) for p in command.params)


def _output_everywhere(group: click.Group) -> None:
    """``--output/-o`` on every command as well as on the root.

    The issues and the README write ``socctl collect replay --source auth FILE --output
    json``; click only takes a group's option before the subcommand, so that line failed
    with "No such option". Given after the command, it overrides the root's.
    """
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _output_everywhere(command)
        elif not _passes_options_through(command):
            command.params.append(click.Option(
                ["--output", "-o"], type=click.Choice(["table", "json"]), default=None,
                expose_value=False, is_eager=True, callback=_set_output,
                help="table for people, json (stable) for scripts (as the root's -o)."))


_register()


def main() -> None:
    cli(prog_name="socctl")
