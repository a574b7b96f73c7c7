"""DynamoDB: the owner of every item format in Concierge's tables.

`formats` names each attribute of each item and its type, for Python and for the state
machine's direct tasks alike (tests/infra/test_item_formats.py holds statemachine/chat.asl.json
to it); `sessions` erases a session and flushes the cache; `semantic` keeps the semantic tier's
question vectors; `history` reads the turns the chain loads. A table added later gets its format
here too.
"""
