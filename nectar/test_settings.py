"""Settings of the test suite: nectar.settings in development mode (local keys; the embedded
database unless DATABASE_URL is set). Processes the tests start inherit NECTAR_DEV."""

import os

os.environ.setdefault("NECTAR_DEV", "1")

from nectar.settings import *  # noqa: F403
