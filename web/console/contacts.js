// The contact search page: newest contacts first, a page at a time ("More" follows the
// server's cursor). Names in any script are shown as text with their own direction (dir=auto).
// Shared helpers ($, el, when, pager, whenSignedIn) are in common.js, loaded first.
"use strict";

let results = null;  // the pager, once logged in

function resultRow(contact) {
  const row = el("tr");
  row.dataset.contactId = contact.id;
  const name = el("td");
  const link = el("a", contact.name || contact.email || contact.phone || `Customer ${contact.id.slice(0, 6)}`);
  link.href = `/console/contacts/${encodeURIComponent(contact.id)}`;
  link.dir = "auto";
  name.append(link);
  row.append(name);
  for (const value of [contact.email, contact.phone, contact.tags.join(", "), contact.conversations,
    when(contact.last_message_at), when(contact.created_at)]) {
    const cell = el("td", value === null || value === "" ? "—" : value);
    cell.dir = "auto";
    row.append(cell);
  }
  return row;
}

function find(q) {
  const params = new URLSearchParams({ q: q.trim() });
  history.replaceState(null, "", `?${params}`);
  results.start("/console/api/contacts", params);
}

whenSignedIn("contacts-error", () => {
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); find($("contact-q").value); });
  results = pager({ table: "contacts-results", more: "contacts-more", none: "contacts-none",
    error: "contacts-error", key: "contacts", row: resultRow });
  const initial = new URLSearchParams(location.search).get("q");
  if (initial) {
    $("contact-q").value = initial;
    find(initial);
  }
});
