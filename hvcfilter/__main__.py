"""Entry point for ``python -m hvcfilter``."""

from hvcfilter.cli import main

main()
