"""``python -m medlake.bench``: see :mod:`medlake.bench.cli`."""

from medlake.bench.cli import main

raise SystemExit(main())
