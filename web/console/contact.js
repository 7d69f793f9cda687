// The contact page: one customer across channels. Like console.js, everything stored is shown
// with textContent only, never as HTML; the page's CSP forbids inline scripts besides.
// Shared helpers ($, api, el, when, whenSignedIn) are in common.js, loaded first.
"use strict";

const state = { agent: null, next: null, contactId: decodeURIComponent(location.pathname.split("/").pop()) };
const contactPath = () => `/console/api/contacts/${encodeURIComponent(state.contactId)}`;

function describe(data) {
  return Object.entries(data || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
}

function conversationRow(conv) {
  const row = el("tr");
  row.dataset.conversationId = conv.id;
  for (const value of [conv.channel, conv.status, when(conv.created_at), when(conv.last_message_at),
    conv.handoff_reason || "—", conv.resolution_code || "—"]) row.append(el("td", value));
  return row;
}

// Conversations come newest first, a page at a time; "More" asks for the next page.
function pagedOn(next) {
  state.next = next;
  $("conversations-more").hidden = !next;
}

async function moreConversations() {
  try {
    const page = await api("GET", `${contactPath()}/conversations?cursor=${encodeURIComponent(state.next)}`);
    $("conversations").tBodies[0].append(...page.conversations.map(conversationRow));
    pagedOn(page.next_cursor);
  } catch (error) { $("contact-error").textContent = error.message; }
}

function render(page) {
  const c = page.contact;
  $("contact").hidden = false;
  $("contact-title").textContent = c.name || c.email || c.phone || `Customer ${c.id.slice(0, 6)}`;
  const details = [["Email", c.email], ["Phone", c.phone], ["Tags", c.tags.join(", ")],
    ["First seen", when(c.created_at)]];
  if (c.erased_at) details.push(["Erased", when(c.erased_at)]);
  $("contact-details").replaceChildren(...details.flatMap(([k, v]) => [el("dt", k), el("dd", v || "—")]));
  $("contact-name").value = c.name || "";
  $("contact-notes").value = c.notes || "";
  $("contact-tags").value = c.tags.join(", ");
  for (const id of ["contact-name", "contact-notes", "contact-tags", "contact-save"]) $(id).disabled = Boolean(c.erased_at);
  $("identities").replaceChildren(...page.identities.map((i) =>
    el("li", `${i.channel}: ${i.external_id}${i.verified_at ? ` (proved ${when(i.verified_at)})` : ""}`)));
  $("conversation-count").textContent = `(${page.conversation_count})`;
  $("conversations").tBodies[0].replaceChildren(...page.conversations.map(conversationRow));
  pagedOn(page.conversations_next);
  $("orders").replaceChildren(...page.orders.map((o) => el("li", `${when(o.at)} · ${o.type} · ${describe(o.data)}`)));
  $("handoffs").replaceChildren(...page.handoffs.map((h) => el("li", `${when(h.at)} · ${h.data.reason || "?"}`)));
  $("surveys").replaceChildren(...page.surveys.map((s) =>
    el("li", `${when(s.at)} · ${s.data.score}/5${s.data.comment ? ` — ${s.data.comment}` : ""}`)));
}

async function loadAudit() {
  if ($("privacy").hidden) return;
  const data = await api("GET", `/console/api/audit?contact_id=${encodeURIComponent(state.contactId)}`);
  $("audit").replaceChildren(...data.entries.map((e) =>
    el("li", `${when(e.at)} · ${e.action} by ${e.actor_name || e.actor_id || "the service"} · ${describe(e.details)}`)));
}

async function save(event) {
  event.preventDefault();
  const tags = $("contact-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  try {
    await api("PATCH", contactPath(), { name: $("contact-name").value, notes: $("contact-notes").value, tags });
    $("contact-error").textContent = "";
    $("save-state").textContent = "Saved";
    render(await api("GET", contactPath()));
  } catch (error) {
    $("save-state").textContent = "";
    $("contact-error").textContent = error.message;
  }
}

async function exportAll() {
  try {
    const data = await api("POST", `${contactPath()}/export`);
    const link = el("a");
    link.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    link.download = `contact-${state.contactId}.json`;
    link.click();
    URL.revokeObjectURL(link.href);
    $("privacy-state").textContent = "Exported (recorded in the audit trail).";
    await loadAudit();
  } catch (error) { $("privacy-state").textContent = error.message; }
}

async function erase(event) {
  event.preventDefault();
  try {
    await api("POST", `${contactPath()}/erase`, { confirm: $("erase-confirm").value.trim() });
    $("privacy-state").textContent = "Erased (recorded in the audit trail).";
    render(await api("GET", contactPath()));
    await loadAudit();
  } catch (error) { $("privacy-state").textContent = error.message; }
}

whenSignedIn("contact-error", async (agent) => {
  state.agent = agent;
  $("contact-form").addEventListener("submit", save);
  $("export").onclick = exportAll;
  $("conversations-more").onclick = moreConversations;
  $("erase-form").addEventListener("submit", erase);
  $("privacy").hidden = !["admin", "manager"].includes(state.agent.role);
  try { render(await api("GET", contactPath())); await loadAudit(); }
  catch (error) { $("contact-error").textContent = error.message; }
});
