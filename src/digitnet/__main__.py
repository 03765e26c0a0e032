"""`python -m digitnet` (also what torchrun starts)."""

from digitnet.cli import run

run()
