-- Resumes a paused rollout.
obj.spec.paused = nil
return obj
