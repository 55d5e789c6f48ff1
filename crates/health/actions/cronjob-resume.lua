-- Lets the schedule create Jobs again.
obj.spec.suspend = false
return obj
