"""``python -m modelkit_assets``: the same as the ``modelkit-assets`` command."""

from modelkit_assets.cli import main

if __name__ == "__main__":
    main()
