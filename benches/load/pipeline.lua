-- HTTP pipelining for wrk, as in TechEmpower's pipeline.lua:
--   wrk ... -s pipeline.lua http://127.0.0.1:8080/plaintext -- 16
-- sends 16 requests back to back on each connection before reading the
-- responses (wrk counts every response as one request).
init = function(args)
  local r = {}
  local depth = tonumber(args[1]) or 1
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
