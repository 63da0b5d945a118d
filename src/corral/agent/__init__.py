"""The agent: one per host. It dials the master, registers, heartbeats, runs tasks through a runtime
and reports every state change. Side effects: the WebSocket to the master and the runtime's processes.
"""
