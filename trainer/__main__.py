"""`python -m trainer ...`: the worker's own entry point (`lingualoop worker` and `lingualoop model prepare`
start it, so the web side never imports torch)."""

from trainer.cli import main

main()
