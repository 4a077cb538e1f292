"""``python -m blit``: the ``styleblit`` command."""
import sys

from blit.cli import main

sys.exit(main())
