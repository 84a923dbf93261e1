-- POST an empty JSON config ("{}") on every request.
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
