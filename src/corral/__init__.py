"""Corral: a container management platform — a job manager and a Fenzo-style scheduler over agent hosts.

The package tree is the architecture (see DESIGN.md): ``domain`` holds plain values, ``jobs`` and
``scheduler`` decide over them without I/O, ``store`` persists, ``control`` runs the loops, and
``api``, ``agent`` and ``cli`` are the edges.
"""

__version__ = "0.1.0"
