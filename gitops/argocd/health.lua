-- Argo CD health check for videogen.io/v1alpha1 VideoJob.
-- Install as resource.customizations.health.videogen.io_VideoJob in argocd-cm (gitops/argocd/README.md).
-- Plain Lua 5.1 (Argo CD runs gopher-lua); tests/deploy runs it with lua5.4 over sample VideoJobs.
--
--   Suspended   spec.suspend honoured (condition Suspended=True)
--   Healthy     condition Succeeded=True: the video of this generation exists
--   Degraded    Succeeded=False (failed for good), or Stalled=True (waits for a person: AwaitingInput)
--   Progressing everything else: queued, running, retrying, or the operator has not yet seen the
--               latest spec (status.observedGeneration < metadata.generation) -- the status then
--               describes the previous spec, so its conditions are not trusted.

local hs = {}

local function condition(status, type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to pick up the VideoJob"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- A condition written for an older generation says nothing about this one.
local function current(c)
  if c == nil then
    return nil
  end
  if generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation then
    return nil
  end
  return c
end

local suspended = current(condition(status, "Suspended"))
local succeeded = current(condition(status, "Succeeded"))
local stalled = current(condition(status, "Stalled"))

if suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = text(suspended, "Suspended")
  return hs
end

if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  local video = nil
  if status.outputs ~= nil then
    video = status.outputs.videoURI
  end
  if video ~= nil then
    hs.message = "Version " .. tostring(status.version or "?") .. ": " .. video
  else
    hs.message = text(succeeded, "Succeeded")
  end
  return hs
end

if succeeded ~= nil and succeeded.status == "False" then
  hs.status = "Degraded"
  hs.message = text(succeeded, "Failed")
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

-- No decisive condition (an operator that wrote only a phase): fall back on the phase.
if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = status.message or "Succeeded"
  return hs
end
if status.phase == "Failed" or status.phase == "AwaitingInput" then
  hs.status = "Degraded"
  hs.message = status.message or status.phase
  return hs
end
if status.phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = status.message or "Suspended"
  return hs
end

hs.status = "Progressing"
local parts = {}
if status.phase ~= nil then
  table.insert(parts, status.phase)
end
if status.currentStage ~= nil then
  table.insert(parts, status.currentStage)
end
if status.progress ~= nil then
  table.insert(parts, status.progress)
end
if #parts > 0 then
  hs.message = table.concat(parts, " ")
else
  hs.message = "Waiting for the operator"
end
return hs
