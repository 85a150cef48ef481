"""Other harnesses' per-sample logs as ttc runs: one module per format (``lm_eval``, ``inspect_log``), each
reading a log into ``common.Imported``, which ``common.write_run`` turns into a run directory like a sweep's
(header, records, summary, curve, report). ``ttc import`` is the command line (``ttc.cli.importers``).
"""
