// The audit trail for managers and admins: every export, erasure, edit and retention purge,
// newest first, a page at a time, filtered by action and UTC day, with a CSV of all matching.
// Shared helpers ($, el, when, pager, whenSignedIn) are in common.js, loaded first.
"use strict";

let entries = null;  // the pager, once logged in

function filters() {
  const params = new URLSearchParams();
  for (const [key, id] of [["action", "audit-action"], ["from", "audit-from"], ["to", "audit-to"]]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  return params;
}

function entryRow(entry) {
  const row = el("tr");
  row.dataset.entryId = entry.id;
  row.dataset.action = entry.action;
  const who = entry.actor_id ? entry.actor_name || entry.actor_id : "the service";
  const contact = el("td");
  if (entry.contact_id) {
    const link = el("a", entry.contact_id.slice(0, 8));
    link.href = `/console/contacts/${encodeURIComponent(entry.contact_id)}`;
    contact.append(link);
  } else contact.textContent = "—";
  const details = Object.entries(entry.details || {})
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  row.append(el("td", when(entry.at)), el("td", who), el("td", entry.action), contact, el("td", details));
  row.cells[1].dir = "auto";
  return row;
}

function apply() {
  const params = filters();
  $("audit-csv").href = `/console/api/audit.csv?${params}`;
  history.replaceState(null, "", `?${params}`);
  entries.start("/console/api/audit", params);
}

whenSignedIn("audit-error", () => {
  const initial = new URLSearchParams(location.search);
  for (const [key, id] of [["action", "audit-action"], ["from", "audit-from"], ["to", "audit-to"]]) {
    if (initial.get(key)) $(id).value = initial.get(key);
  }
  $("audit-filters").addEventListener("submit", (event) => { event.preventDefault(); apply(); });
  entries = pager({ table: "audit-entries", more: "audit-more", none: "audit-none",
    error: "audit-error", key: "entries", row: entryRow });
  apply();
});
