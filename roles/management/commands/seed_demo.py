"""Create and seed the demo customer database, then the demo organization, logins, Service and Roles."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from roles.demo import DEMO_SEED, DemoBuildError, demo_build_postgres
from roles.demo.generator import MAX_SCALE, MIN_SCALE, demo_validate_scale
from roles.demo.loader import demo_grant_service_login
from roles.demo.location import demo_database_location
from roles.demo.platform import demo_platform_ensure

_STAGE_LABELS = {"generate": "Generating rows", "objects": "Keys, indexes, views, functions"}


class _RichProgress:
    """One rich progress bar per table, created as the loader reaches it."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tasks:
            self.progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.tasks:
            self.progress.start()  # only once there is work, so a no-op run prints no empty bars
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(_STAGE_LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


class Command(BaseCommand):
    help = "Create and seed the demo retail database (idempotent) and the demo organization, logins, Service and Roles."

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale", type=float, default=1.0, help=f"Size factor, {MIN_SCALE} to {MAX_SCALE} (1.0: 12k customers)"
        )
        parser.add_argument("--seed", type=int, default=DEMO_SEED, help="Random seed of the generated data")
        parser.add_argument("--force", action="store_true", help="Rebuild the demo database even if it is current")
        parser.add_argument(
            "--max-age-days",
            type=int,
            default=None,
            help="Also rebuild when the data was generated more than this many days ago (dates are relative to it)",
        )

    def handle(self, *args, scale: float, seed: int, force: bool, max_age_days: int | None, **options):
        from rich.console import Console

        try:
            scale = demo_validate_scale(scale)
        except ValueError as exc:
            raise CommandError(f"--scale: {exc}") from None
        if max_age_days is not None and max_age_days < 0:
            raise CommandError("--max-age-days must be 0 or more")
        try:
            location = demo_database_location()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        console = Console(file=self.stdout, highlight=False, soft_wrap=True)
        console.print(f"Demo database: {location.display}")
        try:
            with _RichProgress(console) as progress:
                built = demo_build_postgres(
                    url=location.url, scale=scale, seed=seed, progress=progress, force=force, max_age_days=max_age_days
                )
            if location.service_username and location.service_username != location.username:
                demo_grant_service_login(url=location.url, login=location.service_username)
        except DemoBuildError as exc:
            raise CommandError(str(exc)) from None

        logins_path = settings.DATA_DIR / "demo_logins.txt"
        platform = demo_platform_ensure(location=location, logins_path=logins_path, reset_schema_cache=built["created"])

        if built["created"]:
            console.print(f"Seeded in {built['seconds']:.1f}s (seed {built['seed']}, scale {built['scale']:g}).")
        else:
            console.print(f"Already seeded (seed {built['seed']}, scale {built['scale']:g}): nothing to do.")
        counts = ", ".join(f"{name} {count:,}" for name, count in built["counts"].items())
        console.print(f"  Rows: {counts}")
        console.print(f"  Dates anchored on {built['anchor_date']}")
        console.print(f"Organization: {platform.organization.name} (slug {platform.organization.slug})")
        console.print(f"Service: {platform.service.name} -> {location.display}")
        console.print("Roles: " + ", ".join(role.name for role in platform.roles))
        console.print(f"Logins: {', '.join(['admin', 'analyst'])} (passwords in {logins_path})")
        if platform.created:
            console.print("Created: " + ", ".join(platform.created))
