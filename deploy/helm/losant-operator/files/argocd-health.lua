-- Argo CD health of losant.io Integration and LosantApplication objects (kstatus conditions).
-- Paused objects are Suspended; Stalled=True is checked next, so Ready=True can never hide it.
-- Connected=False makes a Ready integration Degraded only once Losant has reported it
-- disconnected for longer than the grace (annotation losant.io/connection-grace-seconds,
-- default 300). Uses only what Argo CD's Lua sandbox offers: base, table and os.time.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready, stalled, reconciling, connected
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Stalled" then
    stalled = condition
  elseif condition.type == "Reconciling" then
    reconciling = condition
  elseif condition.type == "Connected" then
    connected = condition
  end
end
local function describe(condition)
  return (condition.reason or condition.type) .. ": " .. (condition.message or "")
end
if ready ~= nil and ready.reason == "Paused" then
  hs.status = "Suspended"
  hs.message = describe(ready)
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "The operator has not observed generation " .. tostring(generation) .. " yet"
  return hs
end
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  if connected ~= nil and connected.status == "False" then
    local grace = 300
    local annotations = obj.metadata and obj.metadata.annotations
    if annotations ~= nil and tonumber(annotations["losant.io/connection-grace-seconds"]) ~= nil then
      grace = tonumber(annotations["losant.io/connection-grace-seconds"])
    end
    local since = obj.status.connection and tonumber(obj.status.connection.sinceUnix)
    if since ~= nil and os.time() - since > grace then
      hs.status = "Degraded"
    end
    hs.message = describe(connected)
  end
  return hs
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
return hs
