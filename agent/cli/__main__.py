"""`python -m agent.cli` runs the `behavior-agent` command."""

from agent.cli import main

main()
