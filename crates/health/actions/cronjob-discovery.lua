-- A CronJob can be suspended or resumed (whichever it is not), and run now.
local suspended = obj.spec ~= nil and obj.spec.suspend == true
return {
  suspend = {disabled = suspended, iconClass = "fa fa-fw fa-pause"},
  resume = {disabled = not suspended, iconClass = "fa fa-fw fa-play"},
  ["create-job"] = {iconClass = "fa fa-fw fa-plus"},
}
