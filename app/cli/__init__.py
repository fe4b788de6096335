"""The `lingualoop` command line: thin commands that open one transaction and call one domain function, in one
module per group (common.py holds the root command and what every command shares)."""

from app.cli import classify, corpus, findings, labelstudio, models, serve, simulate, users  # noqa: F401 (they register commands)
from app.cli.common import cli


def main() -> None:
    cli()


__all__ = ["cli", "main"]
