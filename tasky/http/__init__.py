"""What every group of routes shares: JSON responses and the one error shape, request bodies,
query parameters, route documentation and the headers of rendered pages.

The task API (:mod:`tasky.api`), the chains, schedules, tokens, retention, metrics and the web
page all build on these; this package imports none of them.
"""
