-- A Deployment can be restarted, paused or resumed (whichever it is not),
-- and scaled to a number of replicas.
local paused = obj.spec ~= nil and obj.spec.paused == true
return {
  restart = {iconClass = "fa fa-fw fa-redo"},
  pause = {disabled = paused, iconClass = "fa fa-fw fa-pause-circle"},
  resume = {disabled = not paused, iconClass = "fa fa-fw fa-play-circle"},
  scale = {iconClass = "fa fa-fw fa-plus-circle", params = {{name = "replicas"}}},
}
