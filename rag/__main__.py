"""`python -m rag`: see rag.cli."""

from .cli import main

raise SystemExit(main())
