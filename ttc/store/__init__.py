"""The store stage: run directories on disk. The record types (``records``), the Parquet run store and its
atomic writes (``runstore``), schema-1 runs (``v1``), the one-writer lock (``lock``) and what a header records
about where a run ran (``provenance``)."""
