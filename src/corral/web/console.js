// The Corral console: plain ES module, no build step. It reads the same REST API the CLI uses and
// refreshes the view on the master's event stream (/api/v1/events), throttled so a busy cluster
// costs the browser a few requests a second at most. Routes live in the URL hash:
//   #/fleet   #/jobs?state=active&type=batch&application=...   #/jobs/<id>   #/groups

const API = "/api/v1";
const ACTIVE = ["Accepted", "KillInitiated"];
const RESOURCES = [
  ["cpu", "cpu", (v) => fmtNum(v)],
  ["memory_mb", "memory", (v) => fmtMb(v)],
  ["disk_mb", "disk", (v) => fmtMb(v)],
  ["network_mbps", "network", (v) => `${fmtNum(v)} Mbps`],
];

// -- small helpers --------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  fill(node, children, false);
  return node;
}

// Put ``children`` (nested arrays allowed; null, undefined and false skipped) into ``node``.
function fill(node, children, replace = true) {
  if (replace) node.replaceChildren();
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, "");
}

function fmtMb(mb) {
  if (mb >= 1024 * 1024) return `${fmtNum(mb / 1024 / 1024)} TB`;
  if (mb >= 1024) return `${fmtNum(mb / 1024)} GB`;
  return `${fmtNum(mb)} MB`;
}

function fmtDuration(s) {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${fmtNum(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function ago(epoch) {
  return epoch ? `${fmtDuration(Math.max(0, Date.now() / 1000 - epoch))} ago` : "";
}

function clock(epoch) {
  if (!epoch) return "";
  const d = new Date(epoch * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function badge(text, kind = text) {
  return el("span", { class: `badge ${kind}` }, text);
}

function bar(used, total, label, options = {}) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const heat = share >= 0.95 ? " full" : share >= 0.8 ? " hot" : "";
  const node = el(
    "div",
    { class: "bar", title: options.title || label, role: "meter", "aria-valuenow": share.toFixed(3) },
    el("div", { class: `fill${heat}`, style: `width:${(share * 100).toFixed(1)}%` }),
  );
  if (options.guarantee !== undefined && total > 0) {
    const mark = Math.min(1, options.guarantee / total);
    node.append(el("div", { class: "fill guarantee", style: `width:${(mark * 100).toFixed(1)}%` }));
  }
  node.append(el("span", {}, label));
  return node;
}

// Signing in: the token goes into a same-site cookie, which the API accepts for reads only.
const COOKIE = "corral_token";
let signedOut = false;

function signIn(message) {
  if (signedOut) return;
  signedOut = true;
  const input = el("input", { type: "password", id: "token", placeholder: "crl_…", autocomplete: "off", size: "48" });
  const form = el(
    "form",
    { class: "login" },
    el("h1", {}, "Sign in"),
    el("p", { class: "muted" }, message),
    el("p", {}, "Paste an API token (", el("code", {}, "corral admin token create NAME --team TEAM"), ")."),
    input,
    " ",
    el("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `${COOKIE}=${input.value.trim()}; path=/; SameSite=Strict${secure}`;
    location.reload();
  });
  document.getElementById("view").replaceChildren(form);
  input.focus();
}

function signOut() {
  document.cookie = `${COOKIE}=; path=/; max-age=0; SameSite=Strict`;
  location.reload();
}

async function get(path) {
  const response = await fetch(API + path, { headers: { Accept: "application/json" } });
  if (response.status === 401) {
    let message = "This master needs an API token.";
    try {
      message = (await response.json()).message || message;
    } catch (_) {
      /* not JSON */
    }
    signIn(message);
    throw new Error(`GET ${path}: 401 ${message}`);
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body.code) detail = `${body.code}: ${body.message}`; // the API's error shape
    } catch (_) {
      /* not JSON */
    }
    throw new Error(`GET ${path}: ${detail}`);
  }
  return response.json();
}

function table(headers, rows, props = {}) {
  return el(
    "table",
    props,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { class: h.endsWith("#") ? "num" : "" }, h.replace(/#$/, ""))))),
    el("tbody", {}, rows),
  );
}

function empty(text) {
  return el("div", { class: "empty" }, text);
}

function countsOf(counts) {
  const entries = Object.entries(counts || {});
  if (!entries.length) return el("span", { class: "muted" }, "none live");
  return el("span", {}, entries.map(([state, n]) => [badge(`${state} ${n}`, state), " "]));
}

// -- views ----------------------------------------------------------------------------------------
// Each view mounts once per route and returns a refresh function the live updates call.

const views = {};

views.fleet = (root) => {
  const summary = el("div", { class: "cards", id: "fleet-summary" });
  const filter = el("input", { type: "search", placeholder: "filter: host, zone, type, health", id: "host-filter" });
  const hosts = el("div", { id: "hosts" });
  let last = [];
  const drawHosts = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = last.filter((h) =>
      !needle || [h.id, h.attributes.zone, h.attributes.instance_type, health(h)].some((v) => v.toLowerCase().includes(needle)),
    );
    const limit = 1000;
    const rows = shown.slice(0, limit).map((h) =>
      el(
        "tr",
        { dataset: { host: h.id } },
        el("td", { class: "mono" }, h.id),
        el("td", {}, h.attributes.zone),
        el("td", {}, h.attributes.instance_type),
        el("td", {}, badge(health(h)), h.health_detail || h.quarantine_detail ? el("div", { class: "muted" }, h.health_detail || h.quarantine_detail) : null),
        el("td", { class: "num" }, h.tasks),
        RESOURCES.map(([field, , format]) =>
          el("td", {}, bar(h.allocated[field], h.resources[field], `${format(h.allocated[field])} / ${format(h.resources[field])}`)),
        ),
      ),
    );
    fill(hosts, [
      rows.length
        ? table(["Host", "Zone", "Instance type", "Health", "Tasks#", "CPU", "Memory", "Disk", "Network"], rows, { id: "hosts-table" })
        : empty(last.length ? "no host matches the filter" : "no hosts have registered yet: start an agent"),
      shown.length > limit ? el("p", { class: "muted" }, `showing ${limit} of ${shown.length} hosts: narrow the filter`) : null,
    ]);
  };
  filter.addEventListener("input", drawHosts);
  root.append(
    el("h1", {}, "Fleet"),
    summary,
    el("h2", {}, "Hosts"),
    el("div", { class: "filters" }, filter),
    hosts,
  );
  return async () => {
    const [overview, hostList, hostGroups] = await Promise.all([get("/overview?top=5"), get("/hosts"), get("/hostgroups")]);
    const draining = hostList.items.filter((h) => h.draining && h.tasks > 0).slice(0, 10);
    const drains = await Promise.all(draining.map((h) => get(`/hosts/${encodeURIComponent(h.id)}/drain`)));
    fill(summary, [
      ...fleetCards(overview),
      hostGroups.items.length ? hostGroupCard(hostGroups.items) : null,
      drains.length ? drainCard(drains) : null,
    ]);
    last = hostList.items;
    drawHosts();
  };
};

function hostGroupCard(groups) {
  // Each configured host group: its hosts now, the size the autoscaler asked for, what it is removing, and
  // its latest notes (corral hostgroup ls; per host why it is kept: corral hostgroup explain NAME).
  return el(
    "div",
    { class: "card", id: "card-hostgroups" },
    el("h3", {}, "Host groups"),
    groups.map((g) => {
      const s = g.status;
      const notes = [s.provider_error, ...s.notes].filter(Boolean);
      return el(
        "div",
        { class: "hostgroup", dataset: { hostgroup: g.name } },
        el(
          "div",
          {},
          el("strong", {}, g.name),
          " ",
          badge(g.scalable ? g.provider.kind : `${g.provider.kind}, not scaled`, g.scalable ? "ok" : ""),
          s.provider_error ? [" ", badge("provider error", "bad")] : null,
        ),
        el(
          "div",
          {},
          `hosts ${s.hosts} · idle ${s.idle} · desired ${s.desired ?? "—"} · removing ${s.removing}`,
          s.terminating ? ` · terminating ${s.terminating}` : "",
          s.unreachable ? [" · ", badge(`${s.unreachable} unreachable`, "bad")] : null,
        ),
        el("div", { class: "muted" }, `min ${g.min_size} · max ${g.max_size || "none"} · idle kept ${g.min_idle}${g.max_idle ? ` to ${g.max_idle}` : ""}`),
        notes.slice(0, 3).map((n) => el("div", { class: "muted note", title: n }, n)),
      );
    }),
  );
}

function drainCard(drains) {
  // What each draining host still holds, and what its tasks wait for (corral host drain --status).
  return el(
    "div",
    { class: "card", id: "card-drains" },
    el("h3", {}, "Drains"),
    el(
      "dl",
      { class: "kv" },
      drains.map((d) => {
        const kinds = {};
        for (const t of d.tasks) kinds[t.kind] = (kinds[t.kind] || 0) + 1;
        const first = d.tasks.find((t) => t.kind !== "stopping");
        return [
          el("dt", { class: "mono" }, d.host_id),
          el(
            "dd",
            { title: first ? `${first.task_id}: ${first.detail}${first.replacement_pending ? " — " + first.replacement_pending : ""}` : "" },
            `${d.remaining} tasks: `,
            Object.entries(kinds).map(([k, n]) => [badge(`${k} ${n}`, k === "budget" || k === "leader" ? "warn" : "ok"), " "]),
          ),
        ];
      }),
    ),
  );
}

function health(host) {
  if (host.state === "unreachable") return "unreachable";
  if (!host.healthy) return "unhealthy";
  if (host.quarantined_until != null) return "quarantined";
  if (host.draining || host.cordoned || !host.enabled) return "draining";
  return "healthy";
}

function fleetCards(o) {
  const hostTotal = Object.values(o.hosts).reduce((a, b) => a + b, 0);
  const q = o.queue;
  return [
    el(
      "div",
      { class: "card", id: "card-hosts" },
      el("h3", {}, "Hosts"),
      el("div", { class: "big" }, hostTotal),
      el("div", {}, Object.entries(o.hosts).map(([h, n]) => [badge(`${n} ${h}`, h), " "])),
    ),
    el(
      "div",
      { class: "card", id: "card-allocation" },
      el("h3", {}, "Allocated"),
      el(
        "dl",
        { class: "kv" },
        RESOURCES.map(([, name, format]) => {
          const r = o.resources[name];
          return [el("dt", {}, name), el("dd", {}, bar(r.allocated, r.capacity, `${format(r.allocated)} / ${format(r.capacity)}`))];
        }),
      ),
    ),
    el(
      "div",
      { class: "card", id: "card-queue" },
      el("h3", {}, "Queue"),
      el("div", { class: "big" }, q.pending, el("span", { class: "muted", style: "font-size:13px" }, " pending")),
      el("div", { class: "muted" }, q.waiting_retry ? `${q.waiting_retry} backing off before a retry · ` : "", `oldest ready ${fmtDuration(q.oldest_s)}`),
      el(
        "div",
        { class: "buckets", title: "tasks waiting for a host longer than…" },
        Object.entries(q.longer_than).map(([s, n]) => badge(`>${s / 60} min: ${n}`, n ? "warn" : "ok")),
      ),
    ),
    el(
      "div",
      { class: "card", id: "card-scheduler" },
      el("h3", {}, "Scheduler"),
      el(
        "dl",
        { class: "kv" },
        el("dt", {}, "leader"), el("dd", { class: "mono" }, o.leader),
        el("dt", {}, "iterations"), el("dd", {}, o.scheduler.iterations),
        el("dt", {}, "last iteration"), el("dd", {}, `${fmtNum(o.scheduler.last_ms)} ms, ${o.scheduler.last_placed} of ${o.scheduler.last_tasks} placed`),
        el("dt", {}, "tasks placed"), el("dd", {}, o.scheduler.placed),
        el("dt", {}, "alerts"), el("dd", {}, o.alerts ? badge(`${o.alerts} waiting`, "bad") : "none"),
      ),
    ),
  ];
}

views.jobs = (root, route) => {
  const p = route.params;
  const field = (name, input) => el("label", {}, `${name} `, input);
  const state = el("select", { name: "state" }, ["active", "finished", "all"].map((s) => el("option", { value: s, selected: (p.get("state") || "active") === s }, s)));
  const type = el("select", { name: "type" }, ["", "batch", "service"].map((s) => el("option", { value: s, selected: (p.get("type") || "") === s }, s || "any")));
  const text = (name, placeholder) => el("input", { name, placeholder, value: p.get(name) || "", size: 16 });
  const inputs = [text("application", "application"), text("capacity_group", "capacity group"), text("owner", "owner email"), text("label", "key=value")];
  const form = el(
    "form",
    {
      class: "filters",
      id: "job-filters",
      onsubmit: (e) => {
        e.preventDefault();
        const q = new URLSearchParams();
        for (const input of [state, type, ...inputs]) if (input.value) q.set(input.name, input.value);
        location.hash = `#/jobs?${q}`;
      },
    },
    field("state", state),
    field("type", type),
    inputs,
    el("button", { type: "submit" }, "Filter"),
  );
  state.addEventListener("change", () => form.requestSubmit());
  type.addEventListener("change", () => form.requestSubmit());
  const list = el("div", { id: "jobs" });
  root.append(el("h1", {}, "Jobs"), form, list);

  return async () => {
    const q = new URLSearchParams({ order: "newest", limit: "200" });
    const wanted = p.get("state") || "active";
    if (wanted === "active") ACTIVE.forEach((s) => q.append("state", s));
    if (wanted === "finished") q.append("state", "Finished");
    for (const name of ["type", "application", "capacity_group", "owner", "label"]) if (p.get(name)) q.set(name, p.get(name));
    if (p.get("after")) q.set("after", p.get("after"));
    const page = await get(`/jobs?${q}`);
    const rows = page.items.map((j) =>
      el(
        "tr",
        { dataset: { job: j.id } },
        el("td", { class: "mono" }, el("a", { href: `#/jobs/${j.id}` }, j.id)),
        el("td", {}, j.descriptor.application),
        el("td", {}, j.type),
        el("td", {}, j.descriptor.capacity_group),
        el("td", {}, j.descriptor.owner.team_email),
        el("td", {}, badge(j.state), j.reason ? [" ", badge(j.reason)] : null),
        el("td", {}, j.state === "Finished" ? el("span", { class: "muted" }, j.reason_detail) : countsOf(j.task_counts)),
        el("td", { title: clock(j.created_at) }, ago(j.created_at)),
      ),
    );
    const older = new URLSearchParams(p);
    if (page.next) older.set("after", page.next);
    fill(list, [
      rows.length
        ? table(["Job", "Application", "Type", "Group", "Owner", "State", "Tasks", "Created"], rows, { id: "jobs-table" })
        : empty("no job matches: submit one with `corral job submit -f examples/batch.yaml`"),
      page.next ? el("p", {}, el("a", { href: `#/jobs?${older}` }, "older jobs →")) : null,
    ]);
  };
};

views.job = (root, route) => {
  const id = route.id;
  const head = el("div", { id: "job-head" });
  const tasks = el("div", { id: "tasks" });
  const history = el("div", { id: "job-history" });
  const expanded = new Set();
  root.append(el("p", {}, el("a", { href: "#/jobs" }, "← jobs")), head, el("h2", {}, "Tasks"), tasks, el("h2", {}, "Job history"), history);

  return async () => {
    const [job, page] = await Promise.all([get(`/jobs/${id}`), get(`/tasks?job=${encodeURIComponent(id)}&limit=5000`)]);
    fill(head, jobHead(job));
    const sorted = page.items.sort((a, b) => a.index - b.index || b.attempt - a.attempt || (a.id < b.id ? 1 : -1));
    const rows = [];
    for (const t of sorted) {
      const open = expanded.has(t.id);
      rows.push(
        el(
          "tr",
          {
            class: "toggle",
            dataset: { task: t.id, state: t.state },
            title: "show the task's history",
            onclick: () => {
              if (expanded.has(t.id)) expanded.delete(t.id);
              else expanded.add(t.id);
              refreshNow();
            },
          },
          el("td", { class: "mono" }, `${open ? "▾" : "▸"} ${t.id}`),
          el("td", { class: "num" }, t.index ?? "—"),
          el("td", { class: "num" }, t.attempt),
          el("td", {}, badge(t.state)),
          el("td", { title: t.probes ? t.probes.detail : "" }, t.state === "Started" ? badge(t.health) : "", t.version > 1 ? ` v${t.version}` : ""),
          el("td", { class: "mono" }, t.host_id || ""),
          el("td", {}, taskWhy(t)),
          el("td", { title: clock(t.started_at) }, t.started_at ? ago(t.started_at) : ""),
        ),
      );
      if (open) rows.push(el("tr", { class: "expand", dataset: { historyOf: t.id } }, el("td", { colspan: 8 }, taskHistory(t))));
    }
    fill(tasks, [
      rows.length ? table(["Task", "Index#", "Attempt#", "State", "Health", "Host", "Reason", "Started"], rows, { id: "tasks-table" }) : empty("no tasks"),
    ]);
    fill(history, [
      table(
        ["When", "State", "What"],
        job.history.map((e) => el("tr", {}, el("td", { title: ago(e.at) }, clock(e.at)), el("td", {}, badge(e.state)), el("td", {}, e.message))),
        { id: "job-history-table" },
      ),
    ]);
  };
};

function jobHead(job) {
  const d = job.descriptor;
  const c = d.container;
  const r = c.resources;
  const size = job.type === "batch" ? `${d.batch.size} tasks` : `min ${d.service.capacity.min} · desired ${d.service.capacity.desired} · max ${d.service.capacity.max}${d.service.enabled ? "" : " (disabled)"}`;
  return [
    el("h1", {}, d.application, " ", el("span", { class: "muted mono", style: "font-size:14px" }, job.id)),
    el(
      "div",
      { class: "cards" },
      el(
        "div",
        { class: "card" },
        el("h3", {}, "Job"),
        el(
          "dl",
          { class: "kv" },
          el("dt", {}, "state"), el("dd", {}, badge(job.state), job.reason ? [" ", badge(job.reason), " ", job.reason_detail] : null),
          el("dt", {}, "type"), el("dd", {}, `${job.type}: ${size}`),
          el("dt", {}, "owner"), el("dd", {}, d.owner.team_email),
          el("dt", {}, "group"), el("dd", {}, d.capacity_group),
          el("dt", {}, "created"), el("dd", {}, `${clock(job.created_at)} (${ago(job.created_at)})`),
        ),
      ),
      el(
        "div",
        { class: "card" },
        el("h3", {}, "Container"),
        el(
          "dl",
          { class: "kv" },
          el("dt", {}, "image"), el("dd", { class: "mono" }, `${c.image.name}${c.image.digest ? "@" + c.image.digest : ":" + (c.image.tag || "latest")}`),
          el("dt", {}, "command"), el("dd", { class: "mono" }, [...c.entrypoint, ...c.command].join(" ")),
          el("dt", {}, "asks"), el("dd", {}, `${fmtNum(r.cpu)} cpu · ${fmtMb(r.memory_mb)} · ${fmtMb(r.disk_mb)} disk · ${r.network_mbps} Mbps${r.gpu ? ` · ${r.gpu} gpu` : ""}${r.ports ? ` · ${r.ports} ports` : ""}`),
          el("dt", {}, "labels"), el("dd", {}, Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "none"),
        ),
      ),
      el("div", { class: "card" }, el("h3", {}, "Live tasks"), countsOf(job.task_counts)),
      job.rollout || job.red_black ? el("div", { class: "card", id: "rollout" }, el("h3", {}, "Changes"), changesOf(job)) : null,
    ),
  ];
}

function changesOf(job) {
  const r = job.rollout;
  const rb = job.red_black;
  return el(
    "dl",
    { class: "kv" },
    el("dt", {}, "version"), el("dd", {}, `${job.version}`),
    r ? [el("dt", {}, r.revert_of ? "revert" : "rollout"), el("dd", {}, `${r.from_version} → ${r.to_version} `, badge(r.phase, r.phase === "failed" ? "bad" : r.phase === "succeeded" ? "ok" : "warn"), r.detail ? ` ${r.detail}` : "")] : null,
    rb ? [el("dt", {}, "red/black"), el("dd", {}, `after ${rb.previous} `, badge(rb.phase, rb.phase === "failed" ? "bad" : rb.phase === "done" ? "ok" : "warn"), rb.detail ? ` ${rb.detail}` : "")] : null,
  );
}

function taskWhy(t) {
  if (t.state === "Accepted" && t.pending) {
    const rejected = Object.entries(t.pending.rejections || {}).map(([f, n]) => `${f}: ${n}`).join(", ");
    return el("span", { class: "pending-reason", title: rejected ? `hosts turned away — ${rejected}` : "" }, t.pending.message);
  }
  if (t.state === "Accepted" && t.ready_at > Date.now() / 1000) return el("span", { class: "muted" }, `retry in ${fmtDuration(t.ready_at - Date.now() / 1000)}`);
  if (t.state === "Accepted") return el("span", { class: "muted" }, "waiting for the next scheduling iteration");
  if (t.reason) return [badge(t.reason), " ", t.reason_detail, t.exit_code !== null ? ` (exit ${t.exit_code})` : ""];
  return t.kill_reason ? `kill: ${t.kill_reason} ${t.kill_detail}` : "";
}

function taskHistory(t) {
  return el(
    "table",
    { class: "history" },
    el(
      "tbody",
      {},
      t.history.map((e) =>
        el(
          "tr",
          {},
          el("td", { class: "mono" }, clock(e.at)),
          el("td", {}, badge(e.state)),
          el("td", {}, e.reason ? badge(e.reason) : ""),
          el("td", { class: "mono" }, e.host || ""),
          el("td", {}, e.detail),
        ),
      ),
    ),
  );
}

views.groups = (root) => {
  const list = el("div", { id: "groups" });
  root.append(el("h1", {}, "Capacity groups"), el("p", { class: "muted" }, "What each group's placed tasks hold, against its guarantee (dashed) and limit."), list);
  return async () => {
    const [groups, overview] = await Promise.all([get("/capacity-groups"), get("/overview?top=0")]);
    const cluster = overview.resources;
    const rows = groups.items.map((g) =>
      el(
        "tr",
        { dataset: { group: g.name } },
        el("td", {}, el("strong", {}, g.name), g.description ? el("div", { class: "muted" }, g.description) : null),
        el("td", {}, badge(g.tier, g.tier === "critical" ? "warn" : "")),
        el("td", { class: "num" }, overview.queue.by_group[g.name] || 0),
        RESOURCES.slice(0, 2).map(([field, name, format]) => {
          const used = g.usage[field];
          const guarantee = g.guarantee[field];
          const limit = g.limit && g.limit[field] > 0 ? g.limit[field] : null; // 0: not limited
          // against the limit where there is one, else against the whole cluster
          const scale = Math.max(limit ?? cluster[name].capacity, guarantee, used) || 1;
          const label = `${format(used)} used · ${format(guarantee)} guaranteed · ${limit !== null ? `${format(limit)} limit` : `${format(cluster[name].capacity)} in the cluster`}`;
          return el("td", {}, bar(used, scale, label, { guarantee }));
        }),
      ),
    );
    fill(list, [
      table(["Group", "Tier", "Pending#", "CPU", "Memory"], rows, { id: "groups-table" }),
    ]);
  };
};

// -- routing and live updates ---------------------------------------------------------------------

let current = { key: "", refresh: null, running: false, again: false };

function parseRoute() {
  const [path, query] = (location.hash.replace(/^#/, "") || "/fleet").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  if (parts[0] === "jobs" && parts[1]) return { name: "job", id: decodeURIComponent(parts[1]), params, nav: "jobs" };
  const name = views[parts[0]] ? parts[0] : "fleet";
  return { name, params, nav: name };
}

async function refreshNow() {
  const view = current;
  if (!view.refresh || signedOut) return;
  if (view.running) {
    view.again = true; // one more pass once this one ends
    return;
  }
  view.running = true;
  try {
    await view.refresh();
    document.getElementById("view").querySelector(".error")?.remove();
  } catch (error) {
    if (signedOut) return;
    const root = document.getElementById("view");
    let box = root.querySelector(".error");
    if (!box) root.prepend((box = el("div", { class: "error" })));
    box.textContent = String(error.message || error);
  } finally {
    view.running = false;
    if (view.again && current === view) {
      view.again = false;
      refreshNow();
    }
  }
}

function mount() {
  const route = parseRoute();
  const key = location.hash;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.view === route.nav);
  const root = document.getElementById("view");
  root.replaceChildren();
  document.title = `Corral · ${route.name === "job" ? route.id : route.name}`;
  current = { key, route, refresh: views[route.name](root, route), running: false, again: false };
  refreshNow();
}

// Live: any event that touches the view schedules one refresh, at most one per THROTTLE_MS.
const THROTTLE_MS = { fleet: 1000, jobs: 300, job: 250, groups: 1000 };
let timer = null;

function touches(kind, data) {
  const route = current.route;
  if (!route) return false;
  if (route.name === "job") return (kind === "job" && data.id === route.id) || (kind === "task" && data.job_id === route.id);
  if (route.name === "jobs") return kind === "job" || kind === "task";
  return true;
}

function schedule() {
  if (timer !== null) return;
  timer = setTimeout(() => {
    timer = null;
    refreshNow();
  }, THROTTLE_MS[current.route?.name] ?? 500);
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource(`${API}/events?snapshot=false`);
  source.onopen = () => {
    live.textContent = "live";
    live.className = "live on";
    schedule(); // catch up on what happened while disconnected
  };
  source.onerror = () => {
    if (signedOut) {
      source.close(); // no token: stop knocking until the user signs in
      live.textContent = "signed out";
      live.className = "live off";
      return;
    }
    live.textContent = "reconnecting";
    live.className = "live off"; // EventSource reconnects by itself
  };
  for (const kind of ["job", "task", "host"]) {
    source.addEventListener(kind, (event) => {
      let data = {};
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (touches(kind, data)) schedule();
    });
  }
  source.addEventListener("overflow", () => {
    source.close(); // the master dropped us for falling behind: start afresh
    setTimeout(connect, 1000);
    schedule();
  });
}

async function showLeader() {
  try {
    const status = await get("/status");
    document.getElementById("leader").textContent = `${status.role} ${status.master_id} · v${status.version}`;
  } catch (_) {
    /* shown by the views */
  }
}

// Ages move on even when nothing happens: redraw now and then (``?poll=0`` turns this off, leaving
// only the event stream, which is how the browser test proves the live updates work).
const POLL_MS = Number(new URLSearchParams(location.search).get("poll") ?? 10000);
window.addEventListener("hashchange", mount);
document.getElementById("signout").addEventListener("click", (event) => {
  event.preventDefault();
  signOut();
});
if (POLL_MS > 0) setInterval(refreshNow, Math.max(1000, POLL_MS));
mount();
connect();
showLeader();
