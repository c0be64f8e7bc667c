"""Reports of a run: verdict.json (machine-readable), report.md (for people), and figures."""
