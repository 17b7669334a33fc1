"""The splat rule moved to runner/splats.py (one rule for host, remote and lab readers)."""
from runner.splats import (END, MAX_LINES, SPLAT_ERE, STARTS, TIMESTAMP, Splat,  # noqa: F401
                           attribute_console, find, start_kind, strip_time)
