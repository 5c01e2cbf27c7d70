-- wrk script for scripts/bench.sh: POST one body, keep-alive, and print one summary line.
--   BODY_FILE=body.json WRK_PATH=/score wrk -t1 -c32 -d15s -s post.lua http://127.0.0.1:PORT
-- BODY_FILE (required) is sent as application/json to WRK_PATH (default /score): a single
-- record for /score, {"records": [...]} for /score/batch. Every reply must be 200: wrk counts
-- other statuses as errors. At the end it prints one line for the driver to read:
--   WRK_JSON {"requests":..,"rps":..,"p50_us":..,"p99_us":..,"errors":..,...}
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("WRK_PATH") or "/score"
wrk.headers["Content-Type"] = "application/json"
wrk.body = body

function done(summary, latency, requests)
  local e = summary.errors
  local errs = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,' ..
    '"p90_us":%d,"p99_us":%d,"max_us":%d,"errors":%d,"err_connect":%d,' ..
    '"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"bytes":%d,"body_bytes":%d}\n',
    summary.requests, summary.duration,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, errs, e.connect, e.read, e.write, e.status, e.timeout,
    summary.bytes, #body))
end
