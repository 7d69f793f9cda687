// Helpers every console page shares; each page loads this before its own script (the pages'
// Content-Security-Policy allows scripts from the console itself only). Everything a customer
// or agent wrote is inserted with textContent, never as HTML.
"use strict";

const session = { csrf: null };  // the CSRF token every change must echo (from /me or login)
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

const getJson = (path) => api("GET", path);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function showError(where, error) { $(where).textContent = error ? error.message || String(error) : ""; }

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

// The logged-in agent (the CSRF token kept, the header's #me filled in), or an error to show.
async function signIn() {
  const me = await api("GET", "/console/api/me");
  session.csrf = me.csrf_token;
  if ($("me")) $("me").textContent = `${me.agent.name} (${me.agent.role})`;
  return me.agent;
}

// A table filled a page at a time from a list API answering {<key>: [...], next_cursor}: `start`
// shows the first page, the "more" button appends the next. Ids name the page's elements.
function pager({ table, more, none, error, key, row }) {
  const list = { path: null, params: null, next: null };
  async function show(append) {
    const params = new URLSearchParams(list.params);
    if (append) params.set("cursor", list.next);
    showError(error, null);
    try {
      const page = await api("GET", `${list.path}?${params}`);
      const rows = page[key].map(row);
      if (append) $(table).tBodies[0].append(...rows);
      else $(table).tBodies[0].replaceChildren(...rows);
      list.next = page.next_cursor;
      $(more).hidden = !list.next;
      const any = $(table).tBodies[0].rows.length > 0;
      $(table).hidden = !any;
      $(none).hidden = any;
    } catch (failure) {
      $(table).hidden = true;
      $(more).hidden = true;
      $(none).hidden = true;
      showError(error, failure);
    }
  }
  $(more).onclick = () => show(true);
  return { start(path, params) { list.path = path; list.params = params; return show(false); } };
}

// Runs a page's set-up once the document is ready and the agent is known; without a login it
// only says so in the element `errorId`.
function whenSignedIn(errorId, run) {
  document.addEventListener("DOMContentLoaded", async () => {
    let agent;
    try {
      agent = await signIn();
    } catch (_) {
      $(errorId).textContent = "Log in to the console first.";
      return;
    }
    await run(agent);
  });
}
