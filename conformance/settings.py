"""Settings of the conformance site: the demo site plus the fixtures of the official MCP
conformance suite (``test_*`` tools, ``test://`` resources, prompts).

Same URLs, database (``DATABASE_URL``) and channel layer/cache (``REDIS_URL``) handling as
the demo; the fixtures stay out of the demo's admin and ``tools/list``. Serve it with
``DJANGO_SETTINGS_MODULE=conformance.settings``, e.g.
``DJANGO_SETTINGS_MODULE=conformance.settings python -m mcp_sse.daphne_server demo_project.asgi:application``.
"""

from demo_project.settings import *  # noqa: F403
from demo_project.settings import INSTALLED_APPS as DEMO_APPS

INSTALLED_APPS = [*DEMO_APPS, "conformance"]
