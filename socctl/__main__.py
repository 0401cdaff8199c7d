"""Allow ``python -m socctl`` to behave exactly like the console script."""

from socctl.cli.main import main

main()
