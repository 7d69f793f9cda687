/* Store support chat widget. One tag adds it to any page:
 *   <script src="https://support.example/widget.js" data-title="Help" data-color="#0f3d3e"
 *           data-language="he" defer></script>
 * Talks to the web service over one WebSocket (protocol: web/widget/PROTOCOL.md). The chat
 * survives reloads and network drops: the conversation token, the last message seen and any
 * unsent messages live in localStorage; unsent ones are resent with the same id, which the
 * server stores and answers once. Everything shown is set as text, never as HTML.
 */
(function () {
  "use strict";
  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const origin = data.server || (script ? new URL(script.src, location.href).origin : location.origin);
  const config = {
    server: origin.replace(/\/$/, ""),
    title: data.title || "Chat with us",
    color: data.color || "#1f4fd8",
    language: data.language || (navigator.language || "en").slice(0, 2),
  };
  const KEY = "support-widget:" + config.server;
  const store = {
    get() { try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (_) { return {}; } },
    set(patch) { localStorage.setItem(KEY, JSON.stringify(Object.assign(store.get(), patch))); },
  };
  // lastId: the newest message on screen; a reconnect asks only for what came after it,
// a page load (empty screen) for the whole history.
const state = { socket: null, retries: 0, seen: new Set(), pressed: {}, open: false, connected: false, lastId: 0 };

  const css = `
  .sw-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;
    background:${config.color};color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}
  .sw-panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:360px;max-width:calc(100vw - 40px);height:520px;
    max-height:calc(100vh - 120px);display:flex;flex-direction:column;background:#fff;border-radius:12px;
    box-shadow:0 8px 30px rgba(0,0,0,.3);font:15px/1.4 system-ui,sans-serif;color:#1d2330;overflow:hidden}
  .sw-panel[hidden]{display:none}
  .sw-head{background:${config.color};color:#fff;padding:10px 14px;display:flex;align-items:center;gap:8px}
  .sw-head h2{font-size:16px;margin:0;flex:1}
  .sw-head button{background:transparent;color:#fff;border:0;font-size:20px;cursor:pointer}
  .sw-status{font-size:13px;padding:4px 14px;background:#f3f5f9;min-height:1.2em}
  .sw-log{list-style:none;margin:0;padding:10px;flex:1;overflow-y:auto}
  .sw-log li{margin:6px 0;max-width:85%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word;unicode-bidi:plaintext}
  .sw-customer{margin-left:auto !important;background:${config.color};color:#fff}
  .sw-assistant,.sw-agent{background:#eef1f6}
  .sw-agent{border-left:3px solid ${config.color}}
  .sw-system,.sw-activity{background:transparent !important;color:#5b6475;font-size:13px;font-style:italic;max-width:100% !important;text-align:center}
  .sw-pending{opacity:.6}
  .sw-who{display:block;font-size:11px;opacity:.75}
  .sw-log a{color:inherit;text-decoration:underline}
  .sw-replies{display:flex;flex-wrap:wrap;gap:6px;padding:0 10px 6px}
  .sw-replies button{border:1px solid ${config.color};color:${config.color};background:#fff;border-radius:16px;padding:4px 10px;cursor:pointer}
  .sw-typing{font-size:13px;color:#5b6475;padding:0 14px 4px}
  .sw-form{display:flex;border-top:1px solid #e0e4ec}
  .sw-form textarea{flex:1;border:0;padding:10px;font:inherit;resize:none}
  .sw-form button{border:0;background:${config.color};color:#fff;padding:0 16px;cursor:pointer}
  .sw-launcher:focus-visible,.sw-panel button:focus-visible,.sw-form textarea:focus-visible{outline:3px solid #ffbf47}
  @media (max-width:480px){.sw-panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100vh;max-height:100vh;border-radius:0}}`;

  function el(tag, props, text) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const style = el("style", {}, css);
  const launcher = el("button", { className: "sw-launcher", type: "button" }, config.title);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "sw-panel");
  const panel = el("section", { className: "sw-panel", id: "sw-panel", hidden: true });
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", config.title);
  const head = el("div", { className: "sw-head" });
  const title = el("h2", {}, config.title);
  const close = el("button", { type: "button" }, "×");
  close.setAttribute("aria-label", "Close chat");
  head.append(title, close);
  const status = el("div", { className: "sw-status" });
  status.setAttribute("role", "status");
  const log = el("ol", { className: "sw-log" });
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  const replies = el("div", { className: "sw-replies" });
  const typing = el("div", { className: "sw-typing", hidden: true }, "Typing…");
  typing.setAttribute("aria-live", "polite");
  const form = el("form", { className: "sw-form" });
  const input = el("textarea", { rows: 2, placeholder: "Type your message…", maxLength: 4000 });
  input.setAttribute("aria-label", "Your message");
  input.dir = "auto";
  const send = el("button", { type: "submit" }, "Send");
  form.append(input, send);
  panel.append(head, status, log, replies, typing, form);

  function linkified(text) {
    const fragment = document.createDocumentFragment();
    const parts = String(text).split(/(https?:\/\/[^\s<>"')]+)/g);
    parts.forEach((part, index) => {
      if (index % 2) {
        const a = el("a", { href: part, target: "_blank", rel: "noopener noreferrer" }, part);
        fragment.append(a);
      } else if (part) {
        fragment.append(document.createTextNode(part));
      }
    });
    return fragment;
  }

  function setStatus(text) { status.textContent = text || ""; }

  function bubble(message) {
    const author = message.type === "activity" ? "activity" : message.author;
    const item = el("li", { className: "sw-" + author });
    item.dir = "auto";
    item.dataset.id = message.id || "";
    if (message.author === "agent") item.append(el("span", { className: "sw-who" }, "Support team"));
    const shown = message.author === "customer" && state.pressed[message.text] ? state.pressed[message.text] : message.text;
    item.append(linkified(shown || ""));
    return item;
  }

  function showButtons(buttons) {
    replies.replaceChildren(...(buttons || []).slice(0, 10).map((button) => {
      const b = el("button", { type: "button" }, button.title);
      b.onclick = () => { state.pressed[button.payload] = button.title; submit(button.payload); };
      return b;
    }));
  }

  function render(message) {
    if (message.private || state.seen.has(message.id)) return;
    state.seen.add(message.id);
    if (message.source_id) {
      const pending = log.querySelector(`li[data-client-id="${CSS.escape(message.source_id)}"]`);
      if (pending) pending.remove();
    }
    log.append(bubble(message));
    const payload = message.payload || {};
    if (message.author !== "customer") showButtons(payload.buttons);
    if (payload.agent_joined) setStatus(`${payload.agent_name || "A person"} joined the conversation`);
    if (payload.resolved) setStatus("The support team has left the conversation");
    if (payload.returned_to_bot) setStatus("");
    if (payload.queue && payload.queue.offline) setStatus("Our team is away — leave a message");
    state.lastId = Math.max(state.lastId, message.id);
    log.scrollTop = log.scrollHeight;
  }

  function outbox() { return store.get().outbox || []; }

  function flush() {
    if (!state.connected) return;
    for (const item of outbox()) {
      state.socket.send(JSON.stringify({ type: "message", text: item.text, client_message_id: item.id }));
    }
  }

  function submit(text) {
    const clean = String(text).trim();
    if (!clean) return;
    const id = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    store.set({ outbox: outbox().concat([{ id, text: clean }]) });
    const pending = el("li", { className: "sw-customer sw-pending", dir: "auto" });
    pending.dir = "auto";
    pending.dataset.clientId = id;
    pending.append(linkified(state.pressed[clean] || clean));
    log.append(pending);
    log.scrollTop = log.scrollHeight;
    showButtons([]);
    if (state.connected) state.socket.send(JSON.stringify({ type: "message", text: clean, client_message_id: id }));
    else setStatus("Offline — your message will be sent when the connection is back");
  }

  function connect() {
    const saved = store.get();
    const url = config.server.replace(/^http/, "ws") + "/widget/ws";
    const socket = new WebSocket(url);
    state.socket = socket;
    socket.onopen = () => {
      const hello = { type: "hello", language: config.language, after: state.lastId };
      if (saved.conversation_id && saved.token) Object.assign(hello, { conversation_id: saved.conversation_id, token: saved.token });
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (frame) => {
      const event = JSON.parse(frame.data);
      if (event.type === "welcome") {
        state.connected = true;
        state.retries = 0;
        if (event.token) store.set({ conversation_id: event.conversation_id, token: event.token });
        if (status.textContent.startsWith("Offline") || status.textContent.startsWith("Reconnecting")) setStatus("");
        flush();
      } else if (event.type === "message") {
        render(event.message);
      } else if (event.type === "ack") {
        store.set({ outbox: outbox().filter((item) => item.id !== event.client_message_id) });
      } else if (event.type === "typing") {
        typing.hidden = !event.on;
      } else if (event.type === "queue") {
        setStatus(event.offline ? "Our team is away — leave a message"
          : event.position === 1 ? `You are next — about ${event.eta_minutes} min`
          : `You are number ${event.position} in the queue — about ${event.eta_minutes} min`);
      } else if (event.type === "error" && event.retry_after) {
        setTimeout(flush, event.retry_after * 1000);  // kept in the outbox: sent again later
        setStatus("Sending…");
      } else if (event.type === "error") {
        if (event.client_message_id) store.set({ outbox: outbox().filter((i) => i.id !== event.client_message_id) });
        if (/not found/.test(event.error)) store.set({ conversation_id: null, token: null });
        setStatus(event.error);
      }
    };
    socket.onclose = () => {
      state.connected = false;
      typing.hidden = true;
      state.retries = Math.min(state.retries + 1, 6);
      if (state.open || outbox().length) setStatus("Reconnecting…");
      setTimeout(connect, Math.min(15000, 500 * 2 ** state.retries) * (0.75 + Math.random() / 2));
    };
  }

  function open() {
    state.open = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
  }

  function hide() {
    state.open = false;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  launcher.onclick = () => (panel.hidden ? open() : hide());
  close.onclick = hide;
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") hide(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); submit(input.value); input.value = ""; input.focus(); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  function mount() {
    document.head.append(style);
    document.body.append(launcher, panel);
    for (const item of outbox()) {  // typed before a reload, not yet confirmed
      const pending = el("li", { className: "sw-customer sw-pending", dir: "auto" });
      pending.dataset.clientId = item.id;
      pending.append(linkified(item.text));
      log.append(pending);
    }
    connect();
  }

  window.SupportWidget = { open, close: hide };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
