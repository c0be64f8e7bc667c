"""taskq: a priority task queue on Redis Streams that stays correct under crashes."""

from taskq.dlq import DeadLetter, DeadLetters
from taskq.errors import (
    ConfigError,
    DecodeError,
    LeaseLost,
    NotConnected,
    PayloadError,
    PayloadTooLarge,
    ReceiptError,
    RedisUnavailable,
    ReplicationTimeout,
    TaskqError,
    WrongKeyType,
)
from taskq.queue import Outcome, TaskQueue
from taskq.settings import QueueSettings
from taskq.stats import QueueStats
from taskq.task import Delivery, Receipt, Task, TaskPriority, new_task_id
from taskq.worker import Handler, Worker, WorkerGroup, WorkerSettings, current_receipt

__all__ = [
    "ConfigError",
    "DeadLetter",
    "DeadLetters",
    "DecodeError",
    "Delivery",
    "Handler",
    "LeaseLost",
    "NotConnected",
    "Outcome",
    "PayloadError",
    "PayloadTooLarge",
    "QueueSettings",
    "QueueStats",
    "Receipt",
    "ReceiptError",
    "RedisUnavailable",
    "ReplicationTimeout",
    "Task",
    "TaskPriority",
    "TaskQueue",
    "TaskqError",
    "Worker",
    "WorkerGroup",
    "WorkerSettings",
    "WrongKeyType",
    "current_receipt",
    "new_task_id",
]
