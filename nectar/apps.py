from django.apps import AppConfig


class NectarConfig(AppConfig):
    name = "nectar"
    verbose_name = "Nectar platform"
