"""Other harnesses' per-sample logs as ttc runs: one module per format (``lm_eval`` with ``lm_eval_filters``,
``inspect_log``), each streaming a log into ``common.Imported``, which ``write.write_run`` turns into a run
directory like a sweep's (header, records, summary, curve, report); ``rescore`` grades a run's or a log's texts
with a ttc task as a new run. ``ttc import`` and ``ttc rescore`` are the command lines (``ttc.cli``)."""
