"""Validation against real devices and peers: latency backends (``latency``), the board agent
and its wire format (``agent``, ``wire``), rank correlation between backends
(``monotonicity``), proxy adaptation (``adaproxy``), and comparison with peer tools (``peers``).

Nothing here imports ``codesign.cli`` or ``codesign.report``."""
