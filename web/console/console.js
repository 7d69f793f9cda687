// The agent console. Everything a customer or agent wrote is inserted with textContent,
// never as HTML; the server's Content-Security-Policy forbids inline scripts besides.
// Shared helpers ($, api, el, showError) are in common.js, loaded first.
"use strict";

const state = { agent: null, current: null, socket: null, retry: 0 };

function minutesSince(iso) {
  if (!iso) return "";
  const minutes = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
  return minutes < 1 ? "just now" : `${minutes} min`;
}

async function start() {
  try {
    const me = await api("GET", "/console/api/me");
    loggedIn(me);
  } catch (_) {
    $("login").hidden = false;
    $("app").hidden = true;
  }
}

function loggedIn(me) {
  session.csrf = me.csrf_token;
  state.agent = me.agent;
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = `${me.agent.name} (${me.agent.role})`;
  $("open-admin").hidden = me.agent.role !== "admin";
  $("open-reports").hidden = !["manager", "admin"].includes(me.agent.role);
  $("open-audit").hidden = !["manager", "admin"].includes(me.agent.role);
  connect();
  refreshQueue();
}

async function openAdmin() {
  $("conversation").hidden = true;
  $("admin").hidden = false;
  try {
    const [team, hours] = await Promise.all([api("GET", "/console/api/agents"), api("GET", "/console/api/business-hours")]);
    $("agents").tBodies[0].replaceChildren(...team.agents.map((a) => {
      const row = el("tr");
      for (const value of [a.name, a.email, a.role, a.skills.join(", "), a.max_chats, a.online ? "yes" : "no"]) row.append(el("td", value));
      return row;
    }));
    $("hours").value = hours.hours;
    $("timezone").value = hours.timezone;
    $("hours-state").textContent = hours.open_now ? "open now" : "closed now";
  } catch (error) { showError("admin-error", error); }
}

async function adminAct(promise) {
  try { showError("admin-error", null); await promise; await openAdmin(); }
  catch (error) { showError("admin-error", error); }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/console/ws`);
  state.socket = socket;
  socket.onopen = () => {
    state.retry = 0;
    if (state.current) socket.send(JSON.stringify({ type: "watch", conversation_id: state.current }));
    refreshQueue();
  };
  socket.onmessage = (frame) => {
    const event = JSON.parse(frame.data);
    if (event.type === "queue") refreshQueue();
    if (event.type === "message" && event.message.conversation_id === state.current) openConversation(state.current, false);
    // The watch now holds: read the conversation again, for a message stored between the
    // first read and the server taking the watch (its event went to no one).
    if (event.type === "watched" && event.conversation_id === state.current) openConversation(state.current, false);
    if (event.type === "resync") {  // the server may have missed events: read everything again
      refreshQueue();
      if (state.current) openConversation(state.current, false);
    }
  };
  socket.onclose = () => {
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connect, 500 * 2 ** state.retry);  // back off, then reconnect
  };
}

function queueItem(row, withClaim) {
  const item = el("li");
  item.tabIndex = 0;
  item.dataset.conversationId = row.id;
  const who = row.contact.name || row.contact.email || `Customer ${row.contact.id.slice(0, 6)}`;
  item.append(el("strong", who), el("span", ` · ${row.handoff_reason || ""}`));
  item.append(el("span", `${row.channel} · ${row.language || "?"} · waiting ${minutesSince(row.waiting_since)}`, "meta"));
  if (withClaim && row.eligible === false) item.append(el("span", "needs " + row.required_skills.join(", "), "meta"));
  item.onclick = () => openConversation(row.id, true);
  item.onkeydown = (e) => { if (e.key === "Enter") openConversation(row.id, true); };
  return item;
}

async function refreshQueue() {
  try {
    const data = await api("GET", "/console/api/queue");
    $("queue").replaceChildren(...data.waiting.map((row) => queueItem(row, true)));
    $("mine").replaceChildren(...data.mine.map((row) => queueItem(row, false)));
    $("waiting-count").textContent = `(${data.waiting.length})`;
    $("online").textContent = `${data.online_agents} agent(s) online`;
  } catch (error) {
    if (/log in/.test(error.message)) start();
  }
}

async function openConversation(id, watch) {
  if (watch && state.socket && state.socket.readyState === WebSocket.OPEN) {
    if (state.current && state.current !== id) state.socket.send(JSON.stringify({ type: "unwatch", conversation_id: state.current }));
    state.socket.send(JSON.stringify({ type: "watch", conversation_id: id }));
  }
  state.current = id;
  const data = await api("GET", `/console/api/conversations/${encodeURIComponent(id)}`);
  $("conversation").hidden = false;
  $("admin").hidden = true;
  $("conv-title").textContent = data.contact.name || data.contact.email || `Conversation ${id.slice(0, 8)}`;
  $("contact-link").href = `/console/contacts/${encodeURIComponent(data.contact.id)}`;
  $("contact-link").hidden = false;
  const details = [["Status", data.status], ["Reason", data.handoff_reason], ["Channel", data.channel],
    ["Language", data.language], ["Waiting since", data.waiting_since],
    ["Customer email", data.contact.email], ["Customer phone", data.contact.phone]];
  for (const handoff of data.handoff_details) {
    for (const [key, value] of Object.entries(handoff)) details.push([key, typeof value === "object" ? JSON.stringify(value) : value]);
  }
  $("conv-details").replaceChildren(...details.flatMap(([k, v]) => [el("dt", k), el("dd", v ?? "—")]));
  $("transcript").replaceChildren(...data.messages.map((m) => {
    const item = el("li", null, `${m.author}${m.private ? " private" : ""}`);
    item.dataset.author = m.author;
    item.append(el("span", `${m.private ? "note · " : ""}${m.author} · ${new Date(m.created_at).toLocaleTimeString()}`, "meta"));
    item.append(el("span", m.text || ""));
    item.dir = "auto";
    return item;
  }));
  $("transcript").scrollTop = $("transcript").scrollHeight;
  const mine = data.status === "with_agent" && data.assignee_id === state.agent.id;
  $("claim").hidden = data.status !== "waiting";
  for (const id of ["reply-form", "resolve-form", "handback", "transfer-form", "canned-form"]) $(id).hidden = !mine;
}

async function act(promise) {
  try { showError("action-error", null); await promise; await refreshQueue(); if (state.current) await openConversation(state.current, false); }
  catch (error) { showError("action-error", error); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      loggedIn(await api("POST", "/console/api/login", { email: $("login-email").value, password: $("login-password").value }));
      showError("login-error", null);
    } catch (error) { showError("login-error", error); }
  });
  $("logout").onclick = async () => { await api("POST", "/console/api/logout"); location.reload(); };
  $("claim").onclick = () => act(api("POST", `/console/api/conversations/${state.current}/claim`));
  $("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("reply").value;
    act(api("POST", `/console/api/conversations/${state.current}/messages`, { text, private: $("private").checked })
      .then(() => { $("reply").value = ""; }));
  });
  $("resolve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(api("POST", `/console/api/conversations/${state.current}/resolve`, { resolution_code: $("resolution").value }));
  });
  $("handback").onclick = () => act(api("POST", `/console/api/conversations/${state.current}/handback`));
  $("transfer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(api("POST", `/console/api/conversations/${state.current}/transfer`, { skill: $("transfer-skill").value }));
  });
  $("canned-q").addEventListener("input", async () => {
    const data = await api("GET", `/console/api/canned?q=${encodeURIComponent($("canned-q").value)}`);
    $("canned").replaceChildren(...data.replies.map((reply) => {
      const item = el("li", reply.title);
      item.tabIndex = 0;
      item.onclick = () => { $("reply").value = reply.text; $("reply").focus(); };
      return item;
    }));
  });
  $("open-admin").onclick = openAdmin;
  $("close-admin").onclick = () => { $("admin").hidden = true; };
  $("agent-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const skills = $("agent-skills").value.split(",").map((s) => s.trim()).filter(Boolean);
    adminAct(api("POST", "/console/api/agents", {
      name: $("agent-name").value, email: $("agent-email").value, password: $("agent-password").value,
      role: $("agent-role").value, skills, max_chats: Number($("agent-max").value),
    }).then(() => { $("agent-form").reset(); }));
  });
  $("hours-form").addEventListener("submit", (event) => {
    event.preventDefault();
    adminAct(api("PUT", "/console/api/business-hours", { hours: $("hours").value, timezone: $("timezone").value }));
  });
  start();
});
