from django.apps import AppConfig


class RolesConfig(AppConfig):
    name = "roles"
    verbose_name = "Organizations, databases and roles"
    default_auto_field = "django.db.models.BigAutoField"
