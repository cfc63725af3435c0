"""`python -m ferkit`: the `ferkit` command (ferkit.app.command), e.g. python -m ferkit --help."""
import sys

from ferkit.app.command import main

if __name__ == "__main__":
    sys.exit(main())
