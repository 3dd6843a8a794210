"""``python -m harmonize`` runs the ``stripe`` command line."""

from .cli import main

main()
