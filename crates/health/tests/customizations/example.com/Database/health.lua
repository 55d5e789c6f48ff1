-- Health of an example.com Database: the operator reports a phase and the
-- number of replicas in sync; a database is healthy when it is "Running" with
-- every replica in sync.
local result = { status = "Progressing", message = "Waiting for the operator" }
local status = obj.status
if status == nil then
  return result
end
if status.phase == "Failed" then
  result.status = "Degraded"
  result.message = status.reason or "the database failed"
elseif status.phase == "Running" then
  local wanted = obj.spec.replicas or 1
  local synced = status.syncedReplicas or 0
  if synced >= wanted then
    result.status = "Healthy"
    result.message = string.format("%d/%d replicas in sync", synced, wanted)
  else
    result.message = string.format("%d/%d replicas in sync", synced, wanted)
  end
elseif status.phase == "Paused" then
  result.status = "Suspended"
  result.message = "paused by its owner"
end
return result
