"""What the server offers, registered by code: tools, resources, resource templates, prompts.

Site owners use the decorators in :mod:`mcp_sse.tools`; this package holds the machinery.
"""

from .base import NAME_RE, Prompt, PromptArgument, Registry, Resource, ResourceTemplate, Tool, default_registry

__all__ = [
    "NAME_RE",
    "Prompt",
    "PromptArgument",
    "Registry",
    "Resource",
    "ResourceTemplate",
    "Tool",
    "default_registry",
]
