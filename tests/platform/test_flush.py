"""The test suite's flush between transactional tests (tests/support/flush.py) cannot be held for ever."""

from __future__ import annotations

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_connection_left_idle_in_a_transaction_does_not_hold_the_flush(capfd):
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    leaked = psycopg.connect(**params)  # not autocommit: its transaction stays open, holding its row lock
    leaked.execute("INSERT INTO auth_group (name) VALUES ('left open')")

    call_command("flush", interactive=False, verbosity=0)

    assert not Group.objects.exists()
    with pytest.raises(psycopg.OperationalError):
        leaked.execute("SELECT 1")
    assert "idle in a transaction after: INSERT INTO auth_group" in capfd.readouterr().err
    leaked.close()
