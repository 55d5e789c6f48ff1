-- A DaemonSet can be restarted.
return {restart = {iconClass = "fa fa-fw fa-redo"}}
