"""One module per CLI verb (see videochat.cli.VERBS): ``add_arguments(parser)`` and ``run(args)``."""
