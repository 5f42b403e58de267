"""The ``dsimport`` command line: one module per command group, and the local stack launcher (``dsimport up``)."""
