"""Run hubd as ``python -m hubd``."""

from hubd.service.cli import main

raise SystemExit(main())
