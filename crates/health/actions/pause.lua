-- Pauses the rollout: template changes wait until it is resumed.
obj.spec.paused = true
return obj
