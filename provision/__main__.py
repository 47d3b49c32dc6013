"""Allow `python -m provision` as well as the `provision` console script."""

from provision.cli import main

if __name__ == "__main__":
    main()
