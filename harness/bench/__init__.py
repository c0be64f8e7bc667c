"""Benchmarks, one runnable module each: `checkers` (how fast the harness judges a history) and
`cycle` (taskq's produce/consume/ack cycle against a raw redis-py loop)."""
