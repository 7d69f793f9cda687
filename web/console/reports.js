// The managers' dashboard: asks /console/api/reports and draws each table as a chart
// (Chart.js, bundled in vendor/) with the table itself underneath and a CSV link.
// Every value is inserted with textContent; the page's CSP forbids inline code.
// $, getJson and el come from common.js, loaded first.
"use strict";

const charts = [];

// table name -> title, rows getter, label column, plotted columns, chart type
const SECTIONS = [
  { table: "summary", title: "Summary", rows: (r) => Object.entries(r.summary).map(([metric, value]) => ({ metric, value })) },
  { table: "daily", title: "Conversations per day", rows: (r) => r.daily, label: "day", values: ["conversations", "contained", "handed_off"], type: "line" },
  { table: "channels", title: "By channel", rows: (r) => r.channels, label: "channel", values: ["contained", "handed_off"], stacked: true },
  { table: "languages", title: "By language", rows: (r) => r.languages, label: "language", values: ["contained", "handed_off"], stacked: true },
  { table: "skills", title: "By skill needed", rows: (r) => r.skills, label: "skill", values: ["handed_off"] },
  { table: "handoff_reasons", title: "Handoff reasons", rows: (r) => r.handoff_reasons, label: "reason", values: ["handoffs"] },
  { table: "topics", title: "Topics (recognised intents)", rows: (r) => r.topics, label: "topic", values: ["conversations", "handed_off"] },
  { table: "service_levels", title: "Service levels", rows: (r) => r.service_levels, label: "target", values: ["met", "breached"], stacked: true },
  { table: "agents", title: "Agent workload", rows: (r) => r.agents, label: "name", values: ["handled", "resolved"] },
  { table: "csat", title: "CSAT (1-5)", rows: (r) => r.csat, label: "score", values: ["responses"] },
  { table: "nps", title: "NPS question (0-10)", rows: (r) => r.nps, label: "score", values: ["responses"] },
  { table: "flows", title: "Forms: completion and abandonment", rows: (r) => r.flows, label: "flow", values: ["completed", "abandoned", "started"] },
  { table: "kb_articles", title: "Knowledge base: articles answered", rows: (r) => r.knowledge.articles, label: "article", values: ["answers"] },
  { table: "kb_unanswered", title: "Questions the knowledge base could not answer", rows: (r) => r.knowledge.unanswered },
];
const COLOURS = ["#3a6ee8", "#e8833a", "#2f9e5b", "#b53ae8", "#c9a400"];

const FILTERS = ["from", "to", "channel", "language", "agent", "topic", "skill"];

function query() {
  const params = new URLSearchParams();
  for (const key of FILTERS) {
    const value = $(key).value.trim();
    if (value) params.set(key, value);
  }
  return params;
}

function table(rows) {
  const node = el("table");
  const columns = Object.keys(rows[0] || {});
  const head = node.createTHead().insertRow();
  for (const column of columns) head.appendChild(el("th", column));
  const body = node.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const column of columns) {
      const value = row[column];
      tr.appendChild(el("td", value === null ? "" : value, typeof value === "number" ? "num" : ""));
    }
  }
  return node;
}

function chart(section, rows) {
  const box = el("div", null, "chart");
  const canvas = el("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", section.title);
  box.appendChild(canvas);
  charts.push(new window.Chart(canvas, {
    type: section.type || "bar",
    data: {
      labels: rows.map((row) => String(row[section.label] ?? "")),
      datasets: section.values.map((key, i) => ({
        label: key, data: rows.map((row) => row[key]), backgroundColor: COLOURS[i % COLOURS.length],
        borderColor: COLOURS[i % COLOURS.length],
      })),
    },
    options: {
      animation: false, maintainAspectRatio: false,
      scales: { x: { stacked: !!section.stacked }, y: { stacked: !!section.stacked, beginAtZero: true } },
    },
  }));
  return box;
}

// Offers the topics and skills a report showed as choices for the filter (kept across reports).
function suggest(listId, names) {
  const list = $(listId);
  const known = new Set([...list.options].map((option) => option.value));
  for (const name of names) {
    if (!name || known.has(name)) continue;
    known.add(name);
    const option = el("option");
    option.value = name;
    list.appendChild(option);
  }
}

function render(report, params) {
  while (charts.length) charts.pop().destroy();
  const sections = $("sections");
  sections.replaceChildren();
  $("no-data").hidden = !report.no_data;
  const f = report.filters;
  $("range-note").textContent = `${f.from} to ${f.to}, days in ${f.timezone}`;
  for (const name of ["from", "to"]) $(name).value = f[name];
  suggest("topic-list", [...report.topics.map((t) => t.topic), ...report.knowledge.articles.map((a) => a.article)]);
  suggest("skill-list", report.skills.map((s) => s.skill).filter((s) => s !== "any"));
  for (const section of SECTIONS) {
    const rows = section.rows(report);
    const box = el("section", null, "report");
    box.dataset.table = section.table;
    const title = el("h2", section.title);
    if (rows.length && !report.no_data) {
      const link = el("a", "CSV");
      link.href = `/console/api/reports/${section.table}.csv?${params}`;
      link.setAttribute("download", "");
      link.className = "csv";
      title.appendChild(link);
    }
    box.appendChild(title);
    if (!rows.length || report.no_data) {
      box.appendChild(el("p", "No data"));
    } else {
      if (section.values) box.appendChild(chart(section, rows));
      box.appendChild(table(rows));
    }
    sections.appendChild(box);
  }
}

async function load() {
  const params = query();
  $("error").textContent = "";
  try {
    const report = await getJson(`/console/api/reports?${params}`);
    history.replaceState(null, "", `?${params}`);
    render(report, params);
  } catch (error) {
    $("error").textContent = error.message;
  }
}

function seconds(value) {
  if (value === null || value === undefined) return "none";
  return value < 90 ? `${Math.round(value)} s` : `${Math.round(value / 60)} min`;
}

async function live() {
  try {
    const now = await getJson("/console/api/reports/live");
    $("live-waiting").textContent = now.waiting;
    $("live-online").textContent = now.agents_online;
    $("live-longest").textContent = seconds(now.longest_wait_seconds);
  } catch (error) {
    $("error").textContent = error.message;
  }
}

async function start() {
  const initial = new URLSearchParams(location.search);
  for (const key of FILTERS) if (key !== "agent" && initial.get(key)) $(key).value = initial.get(key);
  try {
    const me = await getJson("/console/api/me");
    $("me").textContent = `${me.agent.name} (${me.agent.role})`;
    const team = await getJson("/console/api/agents");
    for (const agent of team.agents) {
      const option = el("option", agent.name);
      option.value = agent.id;
      $("agent").appendChild(option);
    }
    if (initial.get("agent")) $("agent").value = initial.get("agent");
  } catch (error) {
    $("error").textContent = error.message;
    return;
  }
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  await Promise.all([load(), live()]);
  setInterval(live, 15000);
}

document.addEventListener("DOMContentLoaded", start);
