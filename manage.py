#!/usr/bin/env python
"""Django's command-line utility for CryptoSatX."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosatx.settings")
    from django.core.management import execute_from_command_line

    from cryptosatx.config import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:
        # One clear line instead of a traceback: the operator only needs to fix the variable.
        print(f"cryptosatx: configuration error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
