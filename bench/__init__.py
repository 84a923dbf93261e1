"""The benchmark harness (``make bench``): a real server, wrk, and a bare-Starlette baseline."""
