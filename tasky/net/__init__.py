"""Outbound network access: the guarded HTTP client (:mod:`tasky.net.outbound`) and the policy of
what it may reach (:mod:`tasky.net.addresses`).

Nothing is imported here: the policy travels with every task context, and importing the client
would load httpx into every server and worker process that never makes a request.
"""
