"""QueueSettings validation: every invalid value is a ConfigError that names the option."""

from __future__ import annotations

import math
from typing import Any

import pytest

from taskq import ConfigError, QueueSettings, TaskQueue


def test_defaults_are_valid() -> None:
    settings = QueueSettings()
    assert (settings.name, settings.group, settings.codec) == ("tasks", "taskq", "json")
    assert settings.block_ms < settings.socket_timeout_s * 1000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pending_timeout_s": 0}, "pending_timeout_s must be positive"),
        ({"pending_timeout_s": -1.0}, "pending_timeout_s must be positive"),
        ({"pending_timeout_s": math.nan}, "pending_timeout_s must be positive"),
        ({"batch_size": 0}, "batch_size must be positive"),
        ({"delivery_cap": 0}, "delivery_cap must be positive"),
        ({"max_payload_bytes": 0}, "max_payload_bytes must be positive"),
        ({"max_payload_bytes": -5}, "max_payload_bytes must be positive"),
        ({"socket_timeout_s": 0}, "socket_timeout_s must be positive"),
        ({"promote_limit": 0}, "promote_limit must be positive"),
        ({"retry_base_delay_s": -0.1}, "retry_base_delay_s must be zero or positive"),
        ({"retry_base_delay_s": math.nan}, "retry_base_delay_s"),
        ({"retry_max_delay_s": math.nan}, "retry_max_delay_s"),
        ({"block_ms": -1}, "block_ms must be zero or positive"),
        ({"retry_base_delay_s": 10, "retry_max_delay_s": 5}, "retry_max_delay_s must be at least retry_base_delay_s"),
        ({"block_ms": 10_000, "socket_timeout_s": 10.0}, r"block_ms \(10000\) must be below socket_timeout_s"),
        ({"block_ms": 5000, "socket_timeout_s": 2.0}, "block_ms"),
        ({"group": ""}, "group must be a non-empty consumer group name"),
        ({"name": ""}, "queue name '' is invalid"),
        ({"name": "a{b}"}, "queue name 'a{b}' is invalid"),
        ({"codec": "pickle"}, "unknown codec 'pickle'"),
    ],
)
def test_invalid_value_raises_config_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QueueSettings(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"retry_base_delay_s": 0},
        {"block_ms": 0},
        {"retry_base_delay_s": 2, "retry_max_delay_s": 2},
        {"codec": "msgpack"},
        {"block_ms": 9_999, "socket_timeout_s": 10.0},
    ],
)
def test_boundary_values_are_accepted(options: dict[str, Any]) -> None:
    QueueSettings(**options)


def test_settings_are_frozen() -> None:
    settings = QueueSettings()
    with pytest.raises(AttributeError):
        settings.batch_size = 3  # type: ignore[misc]


def test_reclaim_interval_is_a_quarter_of_the_timeout_with_a_floor() -> None:
    assert QueueSettings(pending_timeout_s=8).reclaim_interval_s == 2
    assert QueueSettings(pending_timeout_s=0.01).reclaim_interval_s == 0.05


def test_unknown_task_queue_option_is_a_config_error_listing_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown TaskQueue option\(s\) \['unknown_option'\]; valid ones: .*batch_size"
    ):
        TaskQueue(unknown_option=1)


def test_task_queue_validates_its_settings_without_connecting() -> None:
    with pytest.raises(ConfigError, match="pending_timeout_s must be positive"):
        TaskQueue("redis://127.0.0.1:1/0", pending_timeout=0)
    with pytest.raises(ConfigError, match="batch_size must be positive"):
        TaskQueue(batch_size=-3)
    with pytest.raises(ConfigError, match="delivery_cap must be positive"):
        TaskQueue(delivery_cap=0)


def test_task_queue_keyword_options_reach_the_settings() -> None:
    queue = TaskQueue(name="orders", pending_timeout=4, batch_size=3, retry_base_delay=0.5, codec="msgpack")
    settings = queue.settings
    assert (settings.name, settings.pending_timeout_s, settings.batch_size) == ("orders", 4, 3)
    assert (settings.retry_base_delay_s, settings.codec) == (0.5, "msgpack")
    assert queue.keys.name == "orders"
