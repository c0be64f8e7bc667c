"""harness: a Jepsen-style multi-process bench for Redis Streams task queues."""
