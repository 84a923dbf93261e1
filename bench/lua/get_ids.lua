-- GET /tasky/v1/tasks/{id}/status for ids read from the file BENCH_IDS, round robin.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
   ids[#ids + 1] = line
end
local i = 0

function request()
   i = i % #ids + 1
   return wrk.format("GET", "/tasky/v1/tasks/" .. ids[i] .. "/status")
end
