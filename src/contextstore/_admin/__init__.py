"""Operator tools: the ``contextstore`` CLI, the demo, and the data tools.

The data path (``Store``, ``ConnectionManager``, the repositories, the legacy
backend, the schema and migrations) never imports this package; it may import
everything below it, the legacy backend included.

* :mod:`.cli`: the ``contextstore`` command line;
* :mod:`.demo`: the multi-agent workload behind ``contextstore demo``;
* :mod:`.datatools`: copy, verify, backup and restore.
"""
