"""The ``corral`` command line: start a master, agents or a whole local cluster, and drive the API.

A client command starts in a blink (bench/cli.py, tests/cli/test_imports.py), so:
- the server stacks (uvicorn, the API, control, the store, the agent runtimes) are imported inside the
  commands that run them (``master``, ``agent``, ``up``, ``admin backup|restore|verify``), never at the
  top of a module here;
- httpx is imported when a client is made, httpx_sse and yaml only by the commands that use them;
- command modules do not use ``from __future__ import annotations``: typer reads every command's
  annotations on every run, and string ones it would compile and evaluate each time.
"""
