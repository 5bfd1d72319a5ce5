"""Settings of the demo site: a Django project that uses mcp_sse exactly as a user would.

Environment:
- DATABASE_URL: ``sqlite:///path`` (default: db.sqlite3 next to manage.py) or
  ``postgres://user@host:port/name``.
- REDIS_URL: when set, the channels-redis layer and a Redis cache (several workers);
  unset, the in-memory layer and LocMem cache (one process).
- MCP_CALL_LOG=0: no call log (``CALL_RECORDER = None``), for benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "oauth2_provider",
    "mcp_sse",
    "demo_library",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


# SQLite for a server that writes while it reads (the call log, the admin): write-ahead
# logging lets readers and the writer proceed together and makes a commit cheap, and
# IMMEDIATE transactions take the write lock up front instead of failing half-way with
# "database is locked".
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _database(url: str | None) -> dict[str, object]:
    parts = urlsplit(url or "sqlite://")
    if parts.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path; none: db.sqlite3 next to manage.py
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path[1:] or BASE_DIR / "db.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/") or "postgres",
            "USER": parts.username or "postgres",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "127.0.0.1",
            "PORT": str(parts.port or 5432),
        }
    raise ValueError(f"Unsupported DATABASE_URL scheme: {parts.scheme}")


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}

REDIS_URL = os.environ.get("REDIS_URL")
CHANNEL_LAYERS: dict[str, dict[str, Any]]
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "mcp_sse.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("MCP_LAYER_PREFIX", "asgi")},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("MCP_CACHE_PREFIX", ""),
        }
    }
else:
    # One process: mcp_sse's in-memory layer (Channels' own slows down as streams accumulate).
    CHANNEL_LAYERS = {"default": {"BACKEND": "mcp_sse.layers.InMemoryChannelLayer"}}
    # LocMem keeps 300 entries by default and then evicts: sessions would vanish with their streams.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 200_000}}
    }

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".cache" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

MCP_SSE = {
    "SERVER_NAME": "mcp_sse demo",
    "SERVER_TITLE": "mcp_sse demo library",
    "INSTRUCTIONS": "A demo library: search books, borrow them, run reports.",
    # The demo lets anonymous callers in while DEBUG is on; production requires a token.
    "REQUIRE_AUTH": os.environ.get("MCP_REQUIRE_AUTH", "0") == "1",
    "POST_STREAM_MAX_SECONDS": float(os.environ["MCP_POST_STREAM_MAX_SECONDS"])
    if os.environ.get("MCP_POST_STREAM_MAX_SECONDS")
    else None,
    "KEEPALIVE_INTERVAL": float(os.environ.get("MCP_KEEPALIVE_INTERVAL", "15")),
    "LEASE_SECONDS": float(os.environ.get("MCP_LEASE_SECONDS", "15")),
    "DRAIN_SECONDS": float(os.environ.get("MCP_DRAIN_SECONDS", "30")),
}
if os.environ.get("MCP_OAUTH_AUTHORIZATION_SERVERS"):
    # OAuth resource server mode (tests and deployments behind an authorization server).
    MCP_SSE["OAUTH"] = {
        "AUTHORIZATION_SERVERS": os.environ["MCP_OAUTH_AUTHORIZATION_SERVERS"].split(","),
        "ROOT_METADATA": os.environ.get("MCP_OAUTH_ROOT_METADATA") == "1",
        "TOOL_SCOPES": {"mcp:math": ["add"]},
    }
    MCP_SSE["AUTHENTICATION_CLASSES"] = ["mcp_sse.auth.TokenAuthentication", "mcp_sse.auth.DOTAuthentication"]
if os.environ.get("DJANGO_BEHIND_PROXY") == "1":
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto / X-Forwarded-Host.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
if os.environ.get("MCP_CALL_LOG") == "0":
    # Benchmarks compare call logging on and off.
    MCP_SSE["CALL_RECORDER"] = None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"mcp_sse": {"handlers": ["console"], "level": os.environ.get("MCP_LOG_LEVEL", "WARNING")}},
}
