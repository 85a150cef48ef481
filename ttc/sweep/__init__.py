"""The sweep stage: its configuration (``config``), the runner that walks task x model x strategy and stores
every problem (``runner``), the batching of several problems' model calls (``rounds``), the metered model a
strategy sees (``context``), and the same sweep on a Ray cluster (``cluster``, ``replica``)."""
