"""``python -m benchmarks``: run every scenario, print PASS/MISS, write RESULTS.md + chart."""

from __future__ import annotations

import sys

from benchmarks.run import main

sys.exit(main())
