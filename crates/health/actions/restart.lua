-- Restarts every pod, as `kubectl rollout restart` does: a new pod template
-- annotation makes a new rollout.
local os = require("os")
obj.spec.template.metadata = obj.spec.template.metadata or {}
obj.spec.template.metadata.annotations = obj.spec.template.metadata.annotations or {}
obj.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
