"""Background job runtime: the workers that take jobs from the ``JobQueue`` and run handlers."""
