"""Run hubd as ``python -m hubd``."""

from hubd.cli import main

raise SystemExit(main())
