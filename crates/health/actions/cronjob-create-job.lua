-- Runs the CronJob now, as `kubectl create job --from=cronjob/NAME` does:
-- a Job from its template, owned by it, marked as started by hand.
local os = require("os")
local template = obj.spec.jobTemplate or {}
local metadata = template.metadata or {}
local labels = metadata.labels or {}
local annotations = metadata.annotations or {}
annotations["cronjob.kubernetes.io/instantiate"] = "manual"
local job = {
  apiVersion = "batch/v1",
  kind = "Job",
  metadata = {
    name = string.sub(obj.metadata.name .. "-manual-" .. os.time(), 1, 63),
    namespace = obj.metadata.namespace,
    labels = labels,
    annotations = annotations,
    ownerReferences = {{
      apiVersion = obj.apiVersion,
      kind = obj.kind,
      name = obj.metadata.name,
      uid = obj.metadata.uid,
      controller = true,
      blockOwnerDeletion = true,
    }},
  },
  spec = template.spec,
}
return {{operation = "create", resource = job}}
