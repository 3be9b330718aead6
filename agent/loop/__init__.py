"""The agent loop: a LangGraph graph (plan → retrieve → inspect → verify → answer) and its parts.

`graph.py` builds and runs it; `nodes.py` holds the nodes and routers; `deps.py` what they use
besides the state; `retrieval.py`, `inspection.py`, `onset.py` the work of the retrieve and
inspect nodes; `checkable.py`, `composing.py`, `answering.py` the answer contract. The public
entry point is `agent.api` (`ask`, `AgentService`).
"""
