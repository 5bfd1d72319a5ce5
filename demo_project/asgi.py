import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
django_application = get_asgi_application()

from mcp_sse.asgi import with_mcp  # noqa: E402  (after Django is set up)

application = with_mcp(django_application)
