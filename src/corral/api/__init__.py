"""The HTTP edge: REST under ``/api/v1``, the SSE event stream, and the agents' WebSocket.

Request models (pydantic) live here and only here; handlers translate them into domain values and
call the master. Errors leave as ``{code, message, field?}`` with a fitting status.
"""
