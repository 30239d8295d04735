"""``python -m runner`` is ``run-recipe``."""
import sys

from .cli import main

sys.exit(main())
