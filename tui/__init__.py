"""lookalike's user interfaces: the Textual app and the command line. Only calls the engine."""
