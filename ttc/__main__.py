"""``python -m ttc <verb>``: the ``ttc`` command."""

from ttc.cli import console

console()
