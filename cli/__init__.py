"""The ``memsim`` command line (click): parse, validate, call the engine, print."""
