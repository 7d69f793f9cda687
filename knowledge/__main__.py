"""Entry point for `python -m knowledge`."""

from knowledge.cli import main

raise SystemExit(main())
