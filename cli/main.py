"""`graphgen` entry point: one click group; each command lives in its own module."""

from __future__ import annotations

import click

from graphgen_cli.common import setup_logging
from graphgen_cli.extract import extract
from graphgen_cli.graph import graph


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), help="TOML config file [default: ./graphgen.toml if present; env GRAPHGEN_CONFIG]")
@click.version_option(package_name="graphgen")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """graphgen: seed math questions -> concept graph -> new questions with solutions."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    setup_logging()


cli.add_command(extract)
cli.add_command(graph)

from graphgen_cli.check import check  # noqa: E402
from graphgen_cli.export import export  # noqa: E402
from graphgen_cli.filter import filter_  # noqa: E402
from graphgen_cli.generate import generate  # noqa: E402
from graphgen_cli.report import report  # noqa: E402
from graphgen_cli.run import run  # noqa: E402
from graphgen_cli.sample import sample  # noqa: E402
from graphgen_cli.solve import solve  # noqa: E402

cli.add_command(sample)
cli.add_command(generate)
cli.add_command(export)
cli.add_command(solve)
cli.add_command(check)
cli.add_command(filter_)
cli.add_command(report)
cli.add_command(run)
