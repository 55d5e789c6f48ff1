-- ConfigMaps marked as placeholders are not ready to be used.
if obj.metadata.annotations ~= nil and obj.metadata.annotations["example.com/placeholder"] == "true" then
  return { status = "Progressing", message = "placeholder, waiting for real data" }
end
return { status = "Healthy", message = "" }
