"""The ``corral`` command line: start a master, agents or a whole local cluster, and drive the API."""
