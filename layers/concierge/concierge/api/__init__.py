"""The HTTP edge: the api function's routes, who may call them, and what they do.

app         the resolver and its routes (and the OpenAPI document they make)
requests    the caller, the request id and the strict JSON body, read before the routes
chat        POST /chat: a question through the chain, within the caller's budget
feedback    POST /feedback: a user's rating of one of their answers, once
accounts    sessions, users, the cache and one's usage
services    what the composition root hands the edge, and the spending policy
errors      the contract's failures and their error body
"""

from concierge.api.app import create_app, openapi_document
from concierge.api.services import ApiServices, BudgetPolicy

__all__ = ["ApiServices", "BudgetPolicy", "create_app", "openapi_document"]
