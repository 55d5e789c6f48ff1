-- Stops the schedule from creating Jobs.
obj.spec.suspend = true
return obj
