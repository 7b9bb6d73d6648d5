from django.apps import AppConfig


class NectarConfig(AppConfig):
    name = "nectar"
    verbose_name = "Nectar platform"

    def ready(self) -> None:
        # Registers the fork handler that gives forked children fresh channel-layer state.
        from nectar import publish  # noqa: F401
