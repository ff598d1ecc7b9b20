"""The records runtime: what staff do with data, through one service.

The pages, the HTTP API, imports and the workflow engine all write records
through :class:`records.service.Records`, so validation, permissions, computed
fields, audit and locks hold on every path. No Flask here.
"""
