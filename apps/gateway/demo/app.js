// The demo page: one Holdover client (the SDK's browser bundle) receiving as the token's `sub`,
// an offline/online toggle, a form that posts messages over HTTP with the same token, and the
// recipient's queue depth, polled every second. The token comes from the URL fragment
// (/demo#token=…), which browsers never send to the server; `npm start` prints such a link.
/* global document, location, fetch, atob, setTimeout, URLSearchParams, FormData */
import { createClient } from "./dist/holdover-client.js"

const $ = (id) => document.getElementById(id)
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`
const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? ""

/** The JWT's `sub`, or undefined if the token is not a readable JWT. */
const subjectOf = (jwt) => {
  try {
    const base64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")
    const sub = JSON.parse(atob(base64))["sub"]
    return typeof sub === "string" ? sub : undefined
  } catch {
    return undefined
  }
}

const showState = (state) => {
  $("state").textContent = state
  $("state").dataset.state = state
}

const showProblem = (text) => {
  $("problem").textContent = text
  $("problem").hidden = text === ""
}

const api = async (method, path, body) => {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const answer = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(answer.error?.message ?? `${method} ${path}: HTTP ${response.status}`)
  return answer
}

const showMessage = (message) => {
  const item = document.createElement("li")
  item.dataset.priority = message.priority
  item.dataset.id = message.id
  const priority = document.createElement("span")
  priority.className = `priority priority-${message.priority}`
  priority.textContent = message.priority
  const payload = document.createElement("code")
  payload.className = "payload"
  payload.textContent = JSON.stringify(message.payload)
  item.append(priority, " ", payload)
  if (message.redelivered) {
    const badge = document.createElement("span")
    badge.className = "redelivered"
    badge.textContent = "redelivered"
    item.append(" ", badge)
  }
  $("messages").append(item)
  $("none").hidden = true
}

let client

const goOnline = () => {
  showProblem("")
  client = createClient({
    url: wsUrl,
    token,
    onMessage: showMessage,
    onStateChange: showState,
  })
  client.on("open", () => showProblem(""))
  client.on("closed", ({ code, reason }) => code !== 1000 && showProblem(`Stopped: ${reason}`))
  client.on("error", (error) => showProblem(error.message))
  $("toggle").textContent = "Go offline"
}

const goOffline = async () => {
  const closing = client
  client = undefined
  $("toggle").disabled = true
  await closing.close()
  showState("offline")
  $("toggle").textContent = "Go online"
  $("toggle").disabled = false
}

$("toggle").addEventListener("click", () => (client === undefined ? goOnline() : goOffline()))

$("send").addEventListener("submit", async (event) => {
  event.preventDefault()
  const form = new FormData(event.currentTarget)
  const text = String(form.get("payload"))
  let payload
  try {
    payload = JSON.parse(text)
  } catch {
    payload = text
  }
  const ttl = String(form.get("ttlMs") ?? "").trim()
  const message = {
    to: String(form.get("to")),
    priority: String(form.get("priority")),
    ...(ttl === "" ? {} : { ttlMs: Number(ttl) }),
    payload,
  }
  try {
    const answer = await api("POST", "/v1/messages", message)
    const expires = answer.expiresAt ? `, expires ${new Date(answer.expiresAt).toLocaleTimeString()}` : ""
    $("sent").textContent =
      `${message.priority} message ${answer.id} for ${message.to}: ${answer.status}${expires}`
  } catch (error) {
    $("sent").textContent = `Not posted: ${error.message}`
  }
})

/** Polls the recipient's queue depth once a second (one request at a time). */
const pollDepth = async (recipient) => {
  try {
    const { depth } = await api("GET", `/v1/recipients/${encodeURIComponent(recipient)}/queue`)
    for (const [priority, count] of Object.entries(depth)) $(`depth-${priority}`).textContent = String(count)
  } catch (error) {
    showProblem(`Queue depth: ${error.message}`)
  }
  setTimeout(() => void pollDepth(recipient), 1000)
}

const recipient = subjectOf(token)
if (recipient === undefined) {
  showState("no token")
  showProblem("Open this page as /demo#token=<a JWT with receive, publish and admin scopes>.")
} else {
  $("recipient").textContent = recipient
  document.forms["send"].elements["to"].value = recipient
  $("toggle").disabled = false
  goOnline()
  void pollDepth(recipient)
}
