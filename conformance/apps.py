from django.apps import AppConfig


class ConformanceConfig(AppConfig):
    """Fixture tools, resources and prompts the official MCP conformance suite expects."""

    name = "conformance"
    verbose_name = "MCP conformance fixtures"
