"""Benchmarks. Runnable modules: `checkers` (how fast the harness judges a history), `cycle`
(taskq's produce/consume/ack cycle against a raw redis-py loop), `journal` (what journaling
costs), `floor` (this machine's loopback PING round trips). Used by the command line:
`scenarios` (harness bench throughput|sweep|scaling: taskq beside the raw ceiling), `runs` (one
judged run and the figures read from it), `cost` (redis-server's CPU time for CPU per task)."""
