-- A StatefulSet can be restarted and scaled.
return {
  restart = {iconClass = "fa fa-fw fa-redo"},
  scale = {iconClass = "fa fa-fw fa-plus-circle", params = {{name = "replicas"}}},
}
