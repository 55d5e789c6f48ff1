-- Sets the number of replicas (the `replicas` parameter, a whole number).
local replicas = tonumber(actionParams["replicas"])
if replicas == nil or replicas < 0 or replicas ~= math.floor(replicas) then
  error("invalid number of replicas: " .. tostring(actionParams["replicas"]), 0)
end
obj.spec.replicas = replicas
return obj
