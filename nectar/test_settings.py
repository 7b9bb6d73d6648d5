"""Settings of the test suite: nectar.settings in development mode (local keys; the embedded
database unless DATABASE_URL is set). Processes the tests start inherit NECTAR_DEV."""

import os

from django.conf import global_settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

os.environ.setdefault("NECTAR_DEV", "1")

from nectar.settings import *  # noqa: F403


class FewIterationsPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Production's algorithm (pbkdf2_sha256) with few iterations, so that a test user costs milliseconds
    instead of a second of CPU. The count is stored in each hash, so the processes a test starts with
    production settings (the multi-replica test) verify these passwords as they are."""

    iterations = 1_000


PASSWORD_HASHERS = ["nectar.test_settings.FewIterationsPBKDF2PasswordHasher", *global_settings.PASSWORD_HASHERS]
