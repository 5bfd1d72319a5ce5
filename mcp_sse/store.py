"""Async access to the shared Django cache (sessions, event logs, tokens, counters), without a
thread hop per operation.

Django's ``cache.aget()`` & co. run the sync method through ``sync_to_async`` on one shared
thread: about 75 µs of CPU and 200 µs of latency per call, several times per MCP request, and
every request of the process queued on that one thread. Here:

- process-local backends (LocMem, Dummy) are called directly: they never block;
- Django's ``RedisCache`` is served by a ``redis.asyncio`` client on the same server, with the
  same key format and serialisation, so entries written either way are the same entries;
- any other backend falls back to Django's async methods.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.cache import caches

from .conf import mcp_settings

_LOCAL_BACKENDS = ("LocMemCache", "DummyCache")
# Our Redis connections: a connection that sat idle this long is PINGed before use (a Redis
# restart leaves every pooled connection dead), and a command that meets a dropped connection
# is retried on a new one (backing off 0.05-0.5 s) before it fails.
REDIS_HEALTH_CHECK_INTERVAL = 5
REDIS_RETRIES = 2
REDIS_CONNECT_TIMEOUT = 2.0


def redis_resilience() -> dict[str, Any]:
    """redis-py connection options for surviving a Redis restart (our store and the channel
    layer): health checks of idle connections and retries on a new connection."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return {
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), REDIS_RETRIES),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    }


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says Redis cannot be reached: the request should get
    503 and be retried, not an internal error."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # no redis-py: no Redis to lose
        return False
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, RedisConnectionError | RedisTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def read_through(store: Any, key: str, load: Any, expiry: float | None) -> Any:
    """``store.get(key)``, filled by ``await load()`` on a miss; while the store is out (Redis
    down) every read goes to ``load`` (the database), so what needs nothing shared keeps working."""
    try:
        value = await store.get(key)
    except Exception as exc:
        if not is_outage(exc):
            raise
        return await load()
    if value is None:
        value = await load()
        try:
            await store.set(key, value, expiry)
        except Exception as exc:
            if not is_outage(exc):
                raise
    return value
# Connections per process to the Redis cache, and seconds an operation may wait for one.
REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_TIMEOUT = 20


def _accept_key(key: str) -> None:
    """Key validation for our own process-local backend instance: none."""


class SyncStore:
    """A non-blocking backend, called directly."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    @classmethod
    def local(cls, cache: Any) -> SyncStore:
        # Django checks every key for memcached compatibility (a Python loop over its
        # characters, warnings only): about half of a LocMem get. Our keys never reach
        # memcached through this instance, which is ours alone (not the one caches[] hands out).
        cache.validate_key = _accept_key
        return cls(cache)

    async def get(self, key: str, default: Any = None) -> Any:
        return self.cache.get(key, default)

    async def set(self, key: str, value: Any, expiry: float | None) -> None:
        self.cache.set(key, value, expiry)

    async def add(self, key: str, value: Any, expiry: float | None) -> bool:
        return bool(self.cache.add(key, value, expiry))

    async def delete(self, key: str) -> None:
        self.cache.delete(key)

    async def get_many(self, keys: list[str]) -> dict[str, Any]:
        return dict(self.cache.get_many(keys))

    async def set_many(self, mapping: dict[str, Any], expiry: float | None) -> None:
        self.cache.set_many(mapping, expiry)

    async def incr(self, key: str, delta: int = 1) -> int:
        return int(self.cache.incr(key, delta))

    async def touch(self, key: str, expiry: float | None) -> bool:
        return bool(self.cache.touch(key, expiry))


class ThreadStore(SyncStore):
    """Any other Django backend, through its own async methods."""

    async def get(self, key: str, default: Any = None) -> Any:
        return await self.cache.aget(key, default)

    async def set(self, key: str, value: Any, expiry: float | None) -> None:
        await self.cache.aset(key, value, expiry)

    async def add(self, key: str, value: Any, expiry: float | None) -> bool:
        return bool(await self.cache.aadd(key, value, expiry))

    async def delete(self, key: str) -> None:
        await self.cache.adelete(key)

    async def get_many(self, keys: list[str]) -> dict[str, Any]:
        return dict(await self.cache.aget_many(keys))

    async def set_many(self, mapping: dict[str, Any], expiry: float | None) -> None:
        await self.cache.aset_many(mapping, expiry)

    async def incr(self, key: str, delta: int = 1) -> int:
        return int(await self.cache.aincr(key, delta))

    async def touch(self, key: str, expiry: float | None) -> bool:
        return bool(await self.cache.atouch(key, expiry))


class Pipeliner:
    """Sends the commands that concurrent coroutines issue in one event-loop turn as one
    pipeline (no MULTI/EXEC), in the order they were issued.

    Under load every request reads its session at about the same moment as others, and each
    round trip through redis-py costs far more CPU than the command itself (a pooled connection,
    a task for the socket timeout, a timeout context for the read): a batch of N commands costs
    about one. Alone, a command waits one loop turn more and goes as a pipeline of one.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        # Queued calls: their commands, the future that gets the replies, whether it gets one.
        self.pending: list[tuple[list[tuple[Any, ...]], asyncio.Future[Any], bool]] = []
        self.batches: set[asyncio.Task[None]] = set()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue a command (as ``Redis.execute_command`` takes it); the future gets its reply."""
        return self._queue([args], single=True)

    def call_many(self, commands: list[tuple[Any, ...]]) -> asyncio.Future[list[Any]]:
        """Queue commands, applied in order; the future gets their replies (or the first error)."""
        return self._queue(commands, single=False)

    def _queue(self, commands: list[tuple[Any, ...]], *, single: bool) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        if not self.pending:
            self.loop.call_soon(self._flush)
        self.pending.append((commands, future, single))
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = self.loop.create_task(self._send(batch))
        self.batches.add(task)
        task.add_done_callback(self.batches.discard)

    async def _send(self, batch: list[tuple[list[tuple[Any, ...]], asyncio.Future[Any], bool]]) -> None:
        pipeline = self.client.pipeline(transaction=False)
        for commands, _future, _single in batch:
            for args in commands:
                pipeline.execute_command(*args)
        try:
            replies = await pipeline.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every command of the batch did
            for _commands, future, _single in batch:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for commands, future, single in batch:
            mine = replies[start : start + len(commands)]
            start += len(commands)
            if future.done():  # its caller was cancelled meanwhile
                continue
            error = next((r for r in mine if isinstance(r, Exception)), None)
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(mine[0] if single else mine)


class RedisStore:
    """Django's ``RedisCache``, spoken to with ``redis.asyncio`` (one client per event loop),
    commands of concurrent requests pipelined together (see :class:`Pipeliner`)."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.url = cache._servers[0]  # Django writes to the first server; so do we
        self.serializer = cache._cache._serializer
        self._clients: dict[int, Any] = {}
        self._pipeliners: dict[int, Pipeliner] = {}

    def client(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._clients.get(id(loop))
        if found is None or found[0] is not loop:
            import redis.asyncio

            # A blocking pool: under a burst, operations wait for a free connection instead of
            # failing with "Too many connections" (redis-py's default pool raises at 100).
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT, **redis_resilience()
            )
            found = (loop, redis.asyncio.Redis(connection_pool=pool))
            self._clients[id(loop)] = found
        return found[1]

    def pipeliner(self) -> Pipeliner:
        """This event loop's pipeliner (see :class:`Pipeliner`)."""
        client = self.client()
        found = self._pipeliners.get(id(client))
        if found is None or found.client is not client:
            found = self._pipeliners[id(client)] = Pipeliner(client)
        return found

    def command(self, *args: Any) -> asyncio.Future[Any]:
        """Send a command in this loop turn's pipeline."""
        return self.pipeliner().call(*args)

    def key(self, key: str) -> str:
        # Without Django's memcached key check (a Python loop over the key's characters, warnings
        # only): our keys are short ASCII and never reach memcached through this store.
        return str(self.cache.make_key(key))

    def ttl(self, expiry: float | None) -> int | None:
        return None if expiry is None else max(1, int(expiry))

    def _set_args(self, key: str, value: Any, expiry: float | None) -> tuple[Any, ...]:
        ttl = self.ttl(expiry)
        args = ("SET", self.key(key), self.serializer.dumps(value))
        return args if ttl is None else (*args, "EX", ttl)

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self.command("GET", self.key(key))
        return default if value is None else self.serializer.loads(value)

    async def set(self, key: str, value: Any, expiry: float | None) -> None:
        await self.command(*self._set_args(key, value, expiry))

    async def add(self, key: str, value: Any, expiry: float | None) -> bool:
        return bool(await self.command(*self._set_args(key, value, expiry), "NX"))

    async def delete(self, key: str) -> None:
        await self.command("DEL", self.key(key))

    async def get_many(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        values = await self.command("MGET", *[self.key(k) for k in keys])
        return {k: self.serializer.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def set_many(self, mapping: dict[str, Any], expiry: float | None) -> None:
        """A ``SET ... EX`` per entry, sent together (no MULTI/EXEC), applied in the mapping's
        order (a reader that sees an entry sees those before it)."""
        if mapping:
            await self.pipeliner().call_many([self._set_args(k, v, expiry) for k, v in mapping.items()])

    async def incr(self, key: str, delta: int = 1) -> int:
        """Like Django's ``incr``: ValueError when the key does not exist."""
        full = self.key(key)
        client = self.client()
        if not await client.exists(full):
            raise ValueError(f"Key {key!r} not found.")
        return int(await client.incrby(full, delta))

    async def touch(self, key: str, expiry: float | None) -> bool:
        ttl = self.ttl(expiry)
        client = self.client()
        return bool(await (client.persist(self.key(key)) if ttl is None else client.expire(self.key(key), ttl)))


Store = SyncStore | RedisStore

_stores: dict[tuple[str, str], Store] = {}


def shared_cache() -> Store:
    """The store for ``MCP_SSE["CACHE_ALIAS"]``: one per process and cache configuration.

    Built on a backend instance of its own: ``caches[alias]`` hands out one instance per
    thread/async context, which would mean a store (and a Redis client) per request. Looked up
    once per settings generation (``CACHES`` changes clear it, see ``conf.reload_settings``).
    """
    return mcp_settings.derived("shared_cache", _build_store)


def _build_store() -> Store:
    from django.conf import settings

    alias = mcp_settings.CACHE_ALIAS
    config = repr(sorted(settings.CACHES[alias].items()))
    found = _stores.get((alias, config))
    if found is None:
        cache = caches.create_connection(alias)
        name = type(cache).__name__
        if name in _LOCAL_BACKENDS:
            found = SyncStore.local(cache)
        elif name == "RedisCache" and hasattr(getattr(cache, "_cache", None), "_serializer"):
            found = RedisStore(cache)
        else:
            found = ThreadStore(cache)
        _stores[(alias, config)] = found
    return found
