// The demo page: one Holdover client (the SDK's browser bundle) receiving as the token's `sub`,
// an offline/online toggle, a form that posts messages over HTTP with the same token, and the
// recipient's queue depth, polled every second. The page tells the replay story: posts are listed
// in send order, received messages in arrival order with the post each one was, a marker where a
// session (and so a replay) began, times, the redelivered flag and full expiry dates. The token
// comes from the URL fragment (/demo#token=…), which browsers never send to the server; `npm
// start` prints such a link, and a new fragment takes effect without a reload.
/* global document, location, fetch, atob, setTimeout, clearTimeout, URLSearchParams, FormData, addEventListener */
import { createClient } from "./dist/holdover-client.js"

const $ = (id) => document.getElementById(id)
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`
const priorities = ["critical", "high", "normal", "low"]

let token = ""
let recipient
let client
let pollTimer
let lastDepthAt
const posts = new Map() // message id → { n, item } for the posts made from this page
let arrivals = 0

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

const time = (value) => new Date(value).toLocaleTimeString()
/** A full date and time, and how far away it is ("in 7 days"). */
const when = (value) => {
  const date = new Date(value)
  const seconds = Math.round((date.getTime() - Date.now()) / 1000)
  const [amount, unit] =
    Math.abs(seconds) >= 86_400
      ? [Math.round(seconds / 86_400), "day"]
      : Math.abs(seconds) >= 3_600
        ? [Math.round(seconds / 3_600), "hour"]
        : Math.abs(seconds) >= 60
          ? [Math.round(seconds / 60), "minute"]
          : [seconds, "second"]
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(amount, unit)
  return `${date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" })} (${relative})`
}

const element = (tag, className, text) => {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
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
  let response
  try {
    response = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch {
    throw new Error("the gateway does not answer (stopped or restarting?)")
  }
  const answer = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(answer.error?.message ?? `${method} ${path}: HTTP ${response.status}`)
  return answer
}

/** A line in the received list where a session began: what follows is what waited, critical first. */
const markSession = (welcome) => {
  const waiting = priorities.reduce((sum, priority) => sum + (welcome.pending[priority] ?? 0), 0)
  const marker = element(
    "li",
    "marker",
    waiting === 0
      ? `Connected at ${time(Date.now())}: nothing was waiting.`
      : `Connected at ${time(Date.now())}: replay of the ${waiting} waiting message${waiting === 1 ? "" : "s"} begins here, critical first (expired ones are skipped).`,
  )
  $("messages").append(marker)
  $("none").hidden = true
}

const showMessage = (message) => {
  arrivals += 1
  const item = element("li", "message")
  item.dataset.priority = message.priority
  item.dataset.id = message.id
  const post = posts.get(message.id)
  item.append(
    element("span", "arrival", `#${arrivals}`),
    " ",
    element("span", `priority priority-${message.priority}`, message.priority),
    " ",
    element("code", "payload", JSON.stringify(message.payload)),
    " ",
    element("span", "sent-as", post ? `post #${post.n}` : "posted elsewhere"),
    " ",
    message.redelivered
      ? element("span", "redelivered", "redelivered")
      : element("span", "first", "first delivery"),
    element(
      "span",
      "meta",
      `queued ${time(message.enqueuedAt)} · received ${time(Date.now())} · expires ${when(message.expiresAt)}`,
    ),
  )
  $("messages").append(item)
  $("none").hidden = true
  if (post) post.item.querySelector(".fate").textContent = `received as #${arrivals}`
}

const goOnline = () => {
  showProblem("")
  client = createClient({
    url: wsUrl,
    token,
    onMessage: showMessage,
    onStateChange: showState,
  })
  client.on("open", ({ welcome }) => {
    showProblem("")
    markSession(welcome)
  })
  client.on("reconnecting", ({ delayMs }) =>
    showProblem(`Lost the gateway; trying again in ${(delayMs / 1000).toFixed(1)} s.`),
  )
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
    const expires = answer.expiresAt ? `, expires ${when(answer.expiresAt)}` : ""
    $("sent").textContent =
      `${message.priority} message ${answer.id} for ${message.to}: ${answer.status}${expires}`
    const n = posts.size + 1
    const item = element("li", "post")
    item.dataset.priority = message.priority
    item.append(
      element("span", "arrival", `post #${n}`),
      " ",
      element("span", `priority priority-${message.priority}`, message.priority),
      " ",
      element("code", "payload", JSON.stringify(payload)),
      " ",
      element(
        "span",
        "meta",
        `sent ${time(Date.now())}${message.to === recipient ? "" : ` to ${message.to}`}` +
          (answer.expiresAt ? ` · expires ${when(answer.expiresAt)}` : ""),
      ),
      " ",
      element("span", "fate", answer.status === "queued" ? "waiting" : answer.status),
    )
    $("posted").append(item)
    posts.set(answer.id, { n, item })
    // A message whose TTL runs out before it is received is never delivered: say so when it does.
    const left = answer.expiresAt ? Date.parse(answer.expiresAt) - Date.now() : Infinity
    if (answer.status === "queued" && left < 2 ** 31 - 1)
      setTimeout(() => {
        const fate = item.querySelector(".fate")
        if (fate.textContent === "waiting") fate.textContent = "expired before delivery, never sent"
      }, left + 100)
  } catch (error) {
    $("sent").textContent = `Not posted: ${error.message}`
  }
})

/** Polls the recipient's queue depth once a second (one request at a time). */
const pollDepth = async (polled) => {
  try {
    const { depth } = await api("GET", `/v1/recipients/${encodeURIComponent(polled)}/queue`)
    if (polled !== recipient) return
    for (const [priority, count] of Object.entries(depth)) $(`depth-${priority}`).textContent = String(count)
    $("queue").classList.remove("stale")
    lastDepthAt = Date.now()
    $("depth-note").textContent = ""
  } catch (error) {
    if (polled !== recipient) return
    $("queue").classList.add("stale")
    $("depth-note").textContent =
      lastDepthAt === undefined
        ? `Queue depth unknown: ${error.message}. Retrying every second.`
        : `Queue depth as of ${time(lastDepthAt)}: ${error.message}. Retrying every second.`
  }
  pollTimer = setTimeout(() => void pollDepth(polled), 1000)
}

/** Reads the token from the fragment and (re)starts the client and the polling for its `sub`. */
const start = async () => {
  token = new URLSearchParams(location.hash.slice(1)).get("token") ?? ""
  clearTimeout(pollTimer)
  if (client !== undefined) {
    const closing = client
    client = undefined
    await closing.close()
  }
  recipient = subjectOf(token)
  posts.clear()
  arrivals = 0
  for (const list of ["posted", "messages"]) $(list).replaceChildren()
  $("sent").textContent = ""
  $("none").hidden = false
  if (recipient === undefined) {
    showState("no token")
    $("toggle").disabled = true
    showProblem(
      "Open this page as /demo#token=<a JWT with receive, publish and admin scopes> (npm start prints one).",
    )
    return
  }
  $("recipient").textContent = recipient
  document.forms["send"].elements["to"].value = recipient
  $("toggle").disabled = false
  lastDepthAt = undefined
  goOnline()
  void pollDepth(recipient)
}

addEventListener("hashchange", () => void start())
void start()
