"""``python -m mmib.cli ...``: the ``mmib`` command (e.g. under ``torchrun`` or ``srun``)."""

import sys

from mmib.cli import main

sys.exit(main())
