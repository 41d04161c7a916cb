-- wrk script: a different bearer token on every request, read from the file named
-- after "--" on wrk's command line, one token a line, taken in turn.
local tokens = {}
local next_token = 0

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
end

function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", "/", { ["Authorization"] = "Bearer " .. tokens[next_token] })
end
