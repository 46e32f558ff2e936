"""`python -m regflow` runs the command line."""

from regflow.cli import main

main()
