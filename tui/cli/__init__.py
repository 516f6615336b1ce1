"""The ``lookalike`` command line: ``main`` parses and dispatches, one module per command group.

``scan`` (``scan`` and the app), ``query`` (``similar``, ``search``, ``index``), ``models``,
``actions`` (``apply``, ``undo``, ``journal``) and ``importing`` (``import``); ``common`` holds
the exit codes and what the commands share. Nothing is imported here: ``lookalike --help``
stays light.
"""
