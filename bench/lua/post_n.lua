-- POST "{}" until BENCH_N responses have arrived, then exit at once (run wrk with one thread).
-- wrk itself would wait out its whole -d duration; the harness times the run from the store.
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"

local limit = tonumber(os.getenv("BENCH_N") or "1000")
local seen = 0
local bad = 0

function response(status, headers, body)
   seen = seen + 1
   if status >= 300 then
      bad = bad + 1
   end
   if seen >= limit then
      io.stdout:write(string.format("BENCH responses=%d non2xx=%d\n", seen, bad))
      io.stdout:flush()
      os.exit(0)
   end
end
