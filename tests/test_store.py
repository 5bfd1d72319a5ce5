"""The shared-cache store: same entries as Django's cache API, without thread hops."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings

from mcp_sse.store import RedisStore, SyncStore, ThreadStore, shared_cache
from tests.conftest import REDIS_URL
from tests.live import IN_CI, redis_available


def redis_caches() -> dict[str, Any]:
    if not redis_available(REDIS_URL):
        if IN_CI:
            pytest.fail(f"Redis is required under CI but not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"store-test-{uuid.uuid4().hex[:8]}",
        }
    }


CONFIGS = {
    "locmem": lambda: {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "store-test"}
    },
    "redis": redis_caches,
}


@pytest.mark.parametrize("backend", ["locmem", "redis"])
async def test_store_and_django_cache_share_entries(backend: str) -> None:
    with override_settings(CACHES=CONFIGS[backend]()):
        store = shared_cache()
        assert isinstance(store, SyncStore if backend == "locmem" else RedisStore)
        assert shared_cache() is store  # one per process and configuration
        django_cache = caches["default"]
        await store.set("a", {"x": [1, 2]}, 60)
        assert django_cache.get("a") == {"x": [1, 2]}
        django_cache.set("b", 7, 60)
        assert await store.get("b") == 7
        assert await store.get("missing", "default") == "default"
        assert await store.add("a", "other", 60) is False
        assert await store.add("c", "new", 60) is True
        assert await store.get_many(["a", "b", "c", "missing"]) == {"a": {"x": [1, 2]}, "b": 7, "c": "new"}
        await store.set_many({"d": 1, "e": "two"}, 60)
        assert django_cache.get_many(["d", "e"]) == {"d": 1, "e": "two"}
        assert await store.incr("b") == 8
        assert await store.incr("b", -2) == 6
        with pytest.raises(ValueError):
            await store.incr("never-set")
        assert await store.touch("a", 120) is True
        await store.delete("a")
        assert django_cache.get("a") is None


async def test_other_backends_use_djangos_async_api() -> None:
    config = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": "/tmp/mcp-store-test"}
    }
    with override_settings(CACHES=config):
        store = shared_cache()
        assert isinstance(store, ThreadStore)
        await store.set("k", "v", 60)
        assert await store.get("k") == "v"
        await store.delete("k")


async def test_redis_store_survives_a_burst_beyond_its_pool() -> None:
    """More concurrent operations than pooled connections wait for one instead of failing."""
    import asyncio

    from mcp_sse import store as store_module

    with override_settings(CACHES=redis_caches()):
        store = shared_cache()
        assert isinstance(store, RedisStore)
        await store.set("burst", 1, 60)
        values = await asyncio.gather(*(store.get("burst") for _ in range(store_module.REDIS_MAX_CONNECTIONS * 3)))
        assert values == [1] * (store_module.REDIS_MAX_CONNECTIONS * 3)


async def test_our_locmem_instance_skips_key_validation_and_django_s_does_not() -> None:
    """A key memcached would refuse (spaces, control characters) only warns in Django; our own
    LocMem instance does not spend time checking, the one caches[] hands out still does."""
    odd_key = "mcp_sse:session:has spaces\x01"
    with override_settings(CACHES=CONFIGS["locmem"]()):
        store = shared_cache()
        assert isinstance(store, SyncStore)
        await store.set(odd_key, {"ok": 1}, 60)
        assert await store.get(odd_key) == {"ok": 1}
        with pytest.warns(Warning, match="memcached"):
            caches["default"].get(odd_key)


async def test_redis_set_many_gives_every_entry_its_expiry() -> None:
    """One pipelined SET ... EX per entry (no MSET + EXPIRE): each entry expires, None keeps it."""
    with override_settings(CACHES=redis_caches()):
        store = shared_cache()
        assert isinstance(store, RedisStore)
        await store.set_many({"t1": 1, "t2": {"x": 2}}, 30)
        client = store.client()
        assert [0 < await client.ttl(store.key(k)) <= 30 for k in ("t1", "t2")] == [True, True]
        assert caches["default"].get_many(["t1", "t2"]) == {"t1": 1, "t2": {"x": 2}}
        await store.set_many({"t3": 3}, None)
        assert await client.ttl(store.key("t3")) == -1  # no expiry


@pytest.mark.parametrize("backend", ["locmem", "redis"])
async def test_events_and_the_end_of_a_stream_are_one_store_write(backend: str) -> None:
    from mcp_sse.server.events import EventStore

    with override_settings(CACHES=CONFIGS[backend]()):
        store = shared_cache()
        writes: list[list[str]] = []
        original = store.set_many

        async def counted(mapping: dict[str, Any], expiry: float | None) -> None:
            writes.append(list(mapping))
            await original(mapping, expiry)

        store.set_many = counted  # type: ignore[method-assign]
        try:
            events = EventStore()
            await events.append("s", "st", 1, [None, {"n": 1}])  # priming event and the first message
            assert await events.after("s", "st", 0) == ([(1, None), (2, {"n": 1})], False)
            await events.append("s", "st", 3, [{"n": 2}], final=True)
            assert await events.after("s", "st", 1) == ([(2, {"n": 1}), (3, {"n": 2})], True)
            prefix = "mcp_sse:ev:s:st"
            # Events first, then the number of the last one (a reader never sees a number whose
            # event is missing), then the end mark: one write each time.
            assert writes == [
                [f"{prefix}:1", f"{prefix}:2", f"{prefix}:last"],
                [f"{prefix}:3", f"{prefix}:last", f"{prefix}:end"],
            ]
        finally:
            del store.set_many


async def test_redis_commands_of_concurrent_requests_share_one_round_trip() -> None:
    """Commands issued in the same loop turn go as one pipeline, each reply (or error) to its
    own caller; a failed connection fails every command of the batch, nothing hangs."""
    import asyncio

    from mcp_sse.store import Pipeliner

    with override_settings(CACHES=redis_caches()):
        store = shared_cache()
        assert isinstance(store, RedisStore)
        await store.set("p", 1, 60)
        sent: list[int] = []
        original = Pipeliner._send

        async def counted(self: Pipeliner, batch: list[Any]) -> None:
            sent.append(len(batch))
            await original(self, batch)

        Pipeliner._send = counted  # type: ignore[method-assign]
        try:
            await store.client().lpush(store.key("a-list"), b"x")  # GET on a list: WRONGTYPE
            results = await asyncio.gather(
                store.get("p"), store.get("missing", "d"), store.get("a-list"), return_exceptions=True
            )
            assert results[:2] == [1, "d"] and "WRONGTYPE" in str(results[2])
            assert sent == [3]  # one round trip for the three
            await store.set_many({"q": 1, "r": 2}, 60)
            assert sent == [3, 1]  # one call of two commands
            assert await store.get("q") == 1  # a lone command: a pipeline of one
        finally:
            Pipeliner._send = original  # type: ignore[method-assign]
        await store.delete("a-list")

    dead = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=dead):
        store = shared_cache()
        results = await asyncio.wait_for(asyncio.gather(store.get("a"), store.get("b"), return_exceptions=True), 30)
        assert all(isinstance(r, Exception) and "connect" in str(r).lower() for r in results), results


# -- Redis out of reach ---------------------------------------------------------------------------
def _dead_redis_store() -> RedisStore:
    from django.core.cache.backends.redis import RedisCache

    from tests.live import free_port

    return RedisStore(RedisCache(f"redis://127.0.0.1:{free_port()}/0", {}))


async def test_read_through_falls_back_to_the_loader_while_redis_is_out() -> None:
    """A real client on a port nobody listens on: the read is served by the loader, no error."""
    from mcp_sse.store import read_through

    loads = []

    async def load() -> dict[str, int]:
        loads.append(1)
        return {"from": 1}

    store = _dead_redis_store()
    assert await read_through(store, "k", load, 10) == {"from": 1}
    assert await read_through(store, "k", load, 10) == {"from": 1}
    assert len(loads) == 2  # nothing could be cached: each read goes to the loader


async def test_is_outage_tells_redis_connection_failures_from_other_errors() -> None:
    from mcp_sse.store import is_outage

    with pytest.raises(Exception) as caught:
        await _dead_redis_store().get("k")
    assert is_outage(caught.value)
    try:
        try:
            raise caught.value
        except Exception as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert is_outage(wrapped)  # through __cause__
    assert not is_outage(ValueError("no"))
