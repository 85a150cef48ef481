"""The report stage: what a person reads of a run. ``report.html`` (``html``, its shell ``page``), the
per-problem views it shares with the terminal (``browse``, ``show``) and the run's curve.png (``curve``)."""
