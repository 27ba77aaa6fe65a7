"""The client's tunables, as frozen dataclasses with every default stated on its field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kubevisor import __version__

__all__ = ["ClientOptions", "RetryOptions", "WatchOptions"]


@dataclass(frozen=True)
class RetryOptions:
    """When and how long to retry a request that failed in a way that may pass.

    What is retried (client-go's rules, plus retries on 5xx for reads):

    * ``429 Too Many Requests``, any verb: the server rejected the request before processing it.
    * ``5xx`` with ``Retry-After``, any verb: the server asked for a retry (client-go does the same).
    * ``500``/``502``/``503``/``504`` without ``Retry-After``: only ``GET`` (reads, lists, watch
      opens); a write may have been applied, so it is reported instead.
    * Connection failures: any verb when the connection was never established (the request cannot
      have been sent); only ``GET`` when it broke later.

    A server's ``Retry-After`` (header, or the Status's ``details.retryAfterSeconds``) is the
    delay, exactly; otherwise the delay is exponential backoff with full jitter:
    ``uniform(0, min(backoff_max, backoff_base * 2**attempt))``.
    """

    max_retries: int = 5
    """Retries after the first attempt; ``0`` disables retrying."""
    backoff_base: float = 0.25
    """Seconds; the cap of the first jittered delay."""
    backoff_max: float = 16.0
    """Seconds; the largest jittered delay (``Retry-After`` is honoured even when longer)."""


@dataclass(frozen=True)
class WatchOptions:
    """How watch streams are kept alive and resumed."""

    idle_timeout: float = 120.0
    """Seconds without a byte after which a stream is presumed dead (a half-open connection behind
    a NAT or load balancer sends nothing, ever) and is recycled from the last resourceVersion.  API
    servers send bookmarks about once a minute to watchers that ask for them, so healthy streams
    are never idle this long."""
    min_timeout_seconds: int = 300
    """Each watch request asks the server to close the stream after ``timeoutSeconds`` drawn from
    ``[min, 2*min)``, as client-go's reflector does (5-10 minutes), so that streams rebalance across
    API servers; the client then resumes transparently."""
    max_reconnect_failures: int = 10
    """Consecutive failed attempts to (re)open a stream before the watch raises
    :class:`TransportError` to its consumer.  Any event received resets the count."""
    reconnect_backoff_max: float = 30.0
    """Seconds; the cap of the jittered backoff between reconnect attempts."""


def _default_user_agent() -> str:
    return f"kubevisor/{__version__}"


@dataclass(frozen=True)
class ClientOptions:
    """Connection, throttling, retry and watch behaviour of a :class:`Client`."""

    qps: float | None = 5.0
    """Sustained requests per second allowed by the client-side token bucket (client-go's default:
    5); ``None`` disables client-side rate limiting (e.g. for a server that does its own APF)."""
    burst: int = 10
    """Requests allowed at once above ``qps`` (client-go's default: 10)."""
    connect_timeout: float = 30.0
    """Seconds to establish a connection, TLS included (client-go's dialer: 30 s)."""
    read_timeout: float = 60.0
    """Seconds without a byte while waiting for or reading a non-watch response."""
    request_timeout: float | None = None
    """Seconds for a whole non-watch request (connect to last byte); ``None`` for no limit."""
    max_connections: int = 100
    """Connections in the pool (concurrent requests beyond it queue for a free connection)."""
    retry: RetryOptions = field(default_factory=RetryOptions)
    watch: WatchOptions = field(default_factory=WatchOptions)
    user_agent: str = field(default_factory=_default_user_agent)
    """The ``User-Agent`` header; servers use it as the default field manager of writes."""
    token_refresh_period: float = 60.0
    """Seconds after which a token file is re-read (client-go: one minute)."""
    exec_timeout: float = 120.0
    """Seconds an exec credential plugin may run before it is killed."""
    trust_env: bool = True
    """Use ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` when the config names no proxy (never for
    loopback addresses, like Go's ``ProxyFromEnvironment``)."""
    warning_handler: Callable[[str], None] | None = None
    """Called with the text of each ``Warning`` response header (deprecations, unknown fields under
    ``fieldValidation=Warn``); ``None`` logs them on the ``kubevisor.client`` logger."""
