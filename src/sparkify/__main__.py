"""``python -m sparkify``: the same as the ``sparkify`` command."""

from sparkify.cli import main

if __name__ == "__main__":
    main()
