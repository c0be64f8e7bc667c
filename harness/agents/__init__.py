"""Agents: the producer and consumer OS processes a run starts.

Each runs one adapter and appends its operations to its own journal. They are
started as `python -m harness.agents ROLE ...` by the runner; see `__main__`.
"""
