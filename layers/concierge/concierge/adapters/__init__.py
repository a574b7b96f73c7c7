"""Adapters: everything that talks to AWS, HTTP or a model. Nothing above this touches boto3.

Adapters never build their own AWS clients nor read settings: the composition root
(`concierge.wiring`) hands them a client, or a `ClientFactory` where the read timeout of a call
depends on the request's remaining budget.
"""

from collections.abc import Callable
from typing import Any

# service name, read timeout in seconds (None: the factory's default) -> a boto3 client
ClientFactory = Callable[[str, float | None], Any]
# read timeout in seconds -> a client of one service with that read timeout
TimedClient = Callable[[float], Any]
