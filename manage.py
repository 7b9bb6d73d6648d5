#!/usr/bin/env python
"""Nectar's command-line entry point."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
    from nectar.startup import check_services_or_exit

    check_services_or_exit(sys.argv)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
