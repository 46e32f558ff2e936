"""`python -m regflow.cli` runs the command line."""

from regflow.cli import main

main()
