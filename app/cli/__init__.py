"""The `lingualoop` command line: thin commands that open one transaction and call one domain function, in one
module per group (common.py holds the root command and what every command shares)."""

from app.cli import (  # noqa: F401 (they register commands)
    annotators,
    classify,
    corpus,
    findings,
    labelstudio,
    models,
    quality,
    serve,
    simulate,
    users,
)
from app.cli.common import cli


def main() -> None:
    cli()


__all__ = ["cli", "main"]
