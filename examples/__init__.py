"""Runnable example apps: ``python examples/<name>.py`` or ``gunicorn examples.<name>:server``."""
