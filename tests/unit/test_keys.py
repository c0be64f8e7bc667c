"""Key names: one hash tag per queue, the order taskq.lua expects, and invalid names."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from taskq import ConfigError
from taskq.keys import PRIORITY_COUNT, QueueKeys


def test_key_names() -> None:
    keys = QueueKeys("emails")
    assert keys.prefix == "taskq:{emails}"
    assert keys.streams == ("taskq:{emails}:p0", "taskq:{emails}:p1", "taskq:{emails}:p2", "taskq:{emails}:p3")
    assert keys.stream(3) == "taskq:{emails}:p3"
    assert (keys.delayed, keys.dlq, keys.stats) == (
        "taskq:{emails}:delayed",
        "taskq:{emails}:dlq",
        "taskq:{emails}:stats",
    )


def test_function_keys_are_in_the_order_taskq_lua_takes() -> None:
    # KEYS[1..4] streams p0..p3, KEYS[5] delayed, KEYS[6] dlq, KEYS[7] stats.
    keys = QueueKeys("q")
    assert keys.function_keys == (*keys.streams, keys.delayed, keys.dlq, keys.stats)
    assert len(keys.function_keys) == PRIORITY_COUNT + 3 == 7
    assert len(set(keys.function_keys)) == 7


@pytest.mark.parametrize("name", ["tasks", "a:b:c", "with space", "ünï", "x" * 200])
def test_every_key_of_a_queue_is_in_one_cluster_slot(name: str) -> None:
    keys = QueueKeys(name)
    assert {key_slot(key.encode()) for key in keys.function_keys} == {key_slot(name.encode())}


def test_queues_do_not_share_keys() -> None:
    names = ["a", "b", "a:p0", "ab", "A"]
    all_keys = [key for name in names for key in QueueKeys(name).function_keys]
    assert len(all_keys) == len(set(all_keys))


@pytest.mark.parametrize("name", ["", "{", "}", "a{b", "a}b", "{tag}"])
def test_invalid_names_raise_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"queue name .* is invalid: use a non-empty name without"):
        QueueKeys(name)
