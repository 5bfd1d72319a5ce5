from django.apps import AppConfig


class DemoLibraryConfig(AppConfig):
    name = "demo_library"
    verbose_name = "Demo library"
    default_auto_field = "django.db.models.BigAutoField"
