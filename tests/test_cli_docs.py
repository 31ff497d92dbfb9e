"""Every CLI command has help text and is documented, with an example, in the README."""

from pathlib import Path

import click
import pytest

from graphgen_cli.main import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix=("graphgen",)):
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)
        else:
            yield " ".join(path), cmd


COMMANDS = dict(_commands(cli))


def test_the_expected_commands_exist():
    for name in ("graphgen extract", "graphgen graph stats", "graphgen graph export", "graphgen sample concepts",
                 "graphgen generate questions", "graphgen generate fusion", "graphgen export"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_and_readme_example(name):
    cmd = COMMANDS[name]
    assert cmd.help and len(cmd.help.strip()) > 20, f"{name} has no help text"
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help text"
    assert f"\n{name} " in README or f"\n{name}\n" in README, f"README has no example line for `{name}`"
