"""A retail store with a support desk's tools: τ²-bench's retail domain as mgpt software.

- :mod:`.data` fetches τ²-bench's store, tasks and policy from the package index (pinned).
- :mod:`.store` keeps the store in SQLite, one transaction per request.
- :mod:`.tools` the service's tools (find a customer, look up orders and products, cancel,
  modify, return, exchange...), bound to one store, with τ²-bench's answers and errors.
- :mod:`.tasks` the 114 tasks (74 train, 40 test) and :mod:`.evaluate` their grading: the
  store's end state and what the agent told the customer.

Example::

    from mgpt.domains.retail import RetailData, RetailStore, RetailTools, load_tasks

    data = RetailData.load()                      # fetched once into $MGPT_HOME/data
    store = RetailStore.from_json(data.db_json())
    tools = RetailTools(store)
    tools.find_user_id_by_email("noah.brown7922@example.com")   # 'noah_brown_6181'
    tools.call("cancel_pending_order", {"order_id": "#W0000000", "reason": "no longer needed"})
    # ToolReply(content='Error: Order not found', error=True)
"""

from .data import FETCH_COMMAND, RetailData
from .errors import RetailDataError, RetailError
from .evaluate import Said, ToolStep, Trajectory, Verdict, expected_store, grade, replay_gold, to_tau2_messages
from .store import RetailStore
from .tasks import Task, load_tasks
from .tools import TOOL_NAMES, WRITE_TOOLS, RetailTools, ToolReply

__all__ = [
    "FETCH_COMMAND", "TOOL_NAMES", "WRITE_TOOLS", "RetailData", "RetailDataError", "RetailError", "RetailStore",
    "RetailTools", "Said", "Task", "ToolReply", "ToolStep", "Trajectory", "Verdict", "expected_store", "grade",
    "load_tasks", "replay_gold", "to_tau2_messages",
]
