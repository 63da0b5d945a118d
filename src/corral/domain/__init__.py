"""The domain: frozen dataclasses and enums for jobs, tasks, hosts and resources.

Nothing here does I/O or keeps time; values are built by the edges and decided on by the pure core.
"""
