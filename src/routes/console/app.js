// The taskgate admin console: a single page that uses only the public API.
// Tokens live in this module's memory only (never storage, never a URL): a
// reload asks to sign in again. An expired access token is refreshed once;
// a refused refresh returns to the sign-in screen. Every value from the API
// is inserted as text (textContent), never as HTML.

const session = { access: null, refresh: null, me: null };
const main = document.getElementById("main");
const PAGE = 20;

// --- DOM helpers -----------------------------------------------------------

/** An element with attributes/properties and children (strings become text). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (key in node && typeof value !== "string") {
      node[key] = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus();
}

function errorLine(text) {
  return el("p", { class: "error", role: "alert" }, text);
}

let pending = 0;
function busy(delta) {
  pending += delta;
  document.getElementById("busy").hidden = pending === 0;
}

// --- the API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body, headers) {
    super(body?.detail ?? `The server answered ${status}`);
    this.status = status;
    this.body = body ?? {};
    this.headers = headers;
  }
}

async function send(method, path, { json, form, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(form).toString();
  }
  if (auth && session.access) headers.Authorization = `Bearer ${session.access}`;
  busy(+1);
  try {
    return await fetch(path, { method, headers, body, referrerPolicy: "no-referrer" });
  } finally {
    busy(-1);
  }
}

/** Calls the API; refreshes an expired access token once; throws ApiError. */
async function api(method, path, options = {}) {
  let resp = await send(method, path, options);
  if (resp.status === 401 && session.refresh && options.auth !== false) {
    const body = await resp.clone().json().catch(() => ({}));
    if (body.detail === "Token expired" && (await refreshTokens())) {
      resp = await send(method, path, options);
    } else if (body.error === "invalid_token") {
      signOut("Your session has ended; sign in again.");
      throw new ApiError(401, body, resp.headers);
    }
  }
  const body = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, body, resp.headers);
  return { body, headers: resp.headers };
}

async function refreshTokens() {
  const resp = await send("POST", "/refresh", { json: { refresh_token: session.refresh }, auth: false });
  if (!resp.ok) {
    signOut("Your session has ended; sign in again.");
    return false;
  }
  const pair = await resp.json();
  session.access = pair.access_token;
  session.refresh = pair.refresh_token;
  return true;
}

/** What the API said, as a user should read it. */
function describe(error) {
  if (!(error instanceof ApiError)) return "The server could not be reached; try again.";
  const wait = error.headers?.get("Retry-After");
  return wait && error.status === 429 ? `${error.message} (try again in ${wait} s)` : error.message;
}

// --- signing in and out ---------------------------------------------------------

function signInScreen(notice) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const message = el("p", { id: "signin-message", role: "alert", class: "error" }, notice ?? "");
  const form = el(
    "form",
    { class: "stack", id: "signin", on: { submit: (e) => signIn(e, form, message) } },
    el("h1", {}, "Sign in"),
    el("label", { for: "email" }, "Email"),
    el("input", { id: "email", name: "username", type: "email", autocomplete: "username", required: true }),
    el("label", { for: "password" }, "Password"),
    el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    // Shown when /token answers mfa_required: the app's code, or a recovery code.
    el("label", { for: "otp", id: "otp-label", hidden: true }, "Code from your authenticator app (or a recovery code)"),
    el("input", { id: "otp", name: "otp", autocomplete: "one-time-code", hidden: true }),
    message,
    el("button", { type: "submit" }, "Sign in"),
  );
  show(form);
  form.elements.username.focus();
}

async function signIn(event, form, message) {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  message.textContent = "";
  const fields = { username: form.elements.username.value, password: form.elements.password.value };
  const code = form.elements.otp.value.trim();
  // Six digits are the app's code; anything else is tried as a recovery code.
  if (code) fields[/^[0-9 ]+$/.test(code) ? "otp" : "recovery_code"] = code;
  try {
    const { body } = await api("POST", "/token", { form: fields, auth: false });
    session.access = body.access_token;
    session.refresh = body.refresh_token;
    session.me = (await api("GET", "/users/me")).body;
    document.getElementById("who").textContent = `${session.me.email} (${session.me.role})`;
    // Only the screens this role may use (the API refuses the rest anyway).
    for (const link of document.querySelectorAll("#nav a")) {
      link.hidden = !link.dataset.roles.split(" ").includes(session.me.role);
    }
    document.getElementById("nav").hidden = false;
    document.getElementById("signout").hidden = false;
    const start = session.me.role === "admin" ? "#/overview" : "#/reports";
    if (location.hash === start) route(); else location.hash = start;
  } catch (error) {
    message.textContent = describe(error);
    if (error instanceof ApiError && error.body?.error === "mfa_required") {
      form.elements.otp.hidden = false;
      document.getElementById("otp-label").hidden = false;
      message.textContent = "Enter the code your authenticator app shows.";
      form.elements.otp.focus();
    }
    form.elements.otp.value = "";
  } finally {
    button.disabled = false;
  }
}

async function signOut(notice) {
  const token = session.access;
  const refresh = session.refresh;
  session.access = session.refresh = session.me = null;
  if (token && notice === undefined) {
    await fetch("/logout", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: refresh }),
    }).catch(() => {});
  }
  history.replaceState(null, "", location.pathname);
  signInScreen(notice);
}

// --- screens ----------------------------------------------------------------------

const screens = {
  overview: overviewScreen,
  users: usersScreen,
  user: userScreen,
  create: createScreen,
  audit: auditScreen,
  reports: reportsScreen,
};

async function route() {
  if (!session.access) return signInScreen();
  const [, name = "overview", id] = location.hash.split("/");
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${name}`);
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  const screen = screens[name] ?? overviewScreen;
  try {
    await screen(id);
  } catch (error) {
    if (session.access) show(el("h1", {}, "Not available"), errorLine(describe(error)));
  }
}

function figure(label, value) {
  return el("div", { class: "figure" }, el("b", {}, String(value)), label);
}

async function overviewScreen() {
  const { body: d } = await api("GET", "/admin/dashboard");
  show(
    el("h1", {}, "Overview"),
    el("div", { class: "figures", id: "figures" },
      figure("accounts in all", d.users.total),
      ...Object.entries(d.users.by_role).map(([role, n]) => figure(`accounts with role ${role}`, n)),
      figure("accounts disabled", d.users.disabled),
      figure("tasks in all", d.tasks.total),
      figure("tasks completed", d.tasks.completed),
      figure("live sessions", d.sessions.active)),
  );
}

/** A table; each cell carries its column's heading, which a phone's width shows beside it. */
function table(headings, rows) {
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute("data-label", headings[i] ?? ""));
  }
  return el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows));
}

function pager(total, offset, go) {
  const last = Math.max(0, Math.ceil(total / PAGE) - 1);
  const page = Math.floor(offset / PAGE);
  return el("div", { class: "actions" },
    el("button", { type: "button", disabled: page === 0, on: { click: () => go(offset - PAGE) } }, "Previous"),
    el("span", { id: "page-info" }, `Page ${page + 1} of ${last + 1} (${total} in all)`),
    el("button", { type: "button", disabled: page >= last, on: { click: () => go(offset + PAGE) } }, "Next"));
}

async function usersScreen(_, filters = { q: "", role: "", offset: 0 }) {
  const query = new URLSearchParams({ limit: PAGE, offset: filters.offset });
  if (filters.q) query.set("q", filters.q);
  if (filters.role) query.set("role", filters.role);
  const { body: users, headers } = await api("GET", `/admin/users?${query}`);
  const total = Number(headers.get("X-Total-Count") ?? users.length);
  const search = el("input", { id: "q", type: "search", value: filters.q });
  const role = el("select", { id: "role-filter" },
    ["", "user", "manager", "admin"].map((r) => el("option", { value: r, selected: r === filters.role }, r || "any role")));
  const apply = (offset) => usersScreen(null, { q: search.value, role: role.value, offset: Math.max(0, offset) })
    .catch((e) => show(errorLine(describe(e))));
  show(
    el("h1", {}, "Users"),
    el("form", { class: "toolbar", on: { submit: (e) => { e.preventDefault(); apply(0); } } },
      el("label", { for: "q" }, "Search"), search,
      el("label", { for: "role-filter" }, "Role"), role,
      el("button", { type: "submit" }, "Apply")),
    table(["id", "email", "name", "role", "status", "2FA"], users.map((u) =>
      el("tr", {},
        el("td", {}, String(u.id)),
        el("td", {}, el("a", { href: `#/user/${u.id}` }, u.email)),
        el("td", {}, u.full_name ?? ""),
        el("td", {}, u.role),
        el("td", {}, u.disabled ? "disabled" : "active"),
        el("td", {}, u.mfa_enabled ? "on" : "off")))),
    pager(total, filters.offset, apply),
  );
}

async function userScreen(id, notice) {
  const { body: user } = await api("GET", `/admin/users/${encodeURIComponent(id)}`);
  const { body: tasks } = await api("GET", `/admin/tasks?owner_id=${user.id}&limit=${PAGE}`);
  const { body: sessions, headers: sessionHeaders } =
    await api("GET", `/admin/users/${user.id}/sessions?limit=${PAGE}`);
  const liveSessions = Number(sessionHeaders.get("X-Total-Count") ?? sessions.length);
  const message = el("p", { id: "user-message", role: "status", class: "notice" }, notice ?? "");
  // Runs `work`, then shows the page again with `done` (or what it makes of the answer).
  const act = async (work, done) => {
    try {
      const answer = await work();
      await userScreen(id, typeof done === "function" ? done(answer) : done);
    } catch (error) {
      message.className = "error";
      message.textContent = describe(error);
      if (error.body?.error === "recovery_disabled") sendReset.hidden = true;
    }
  };
  const temporary = el("input", { id: "temp-password", type: "password", autocomplete: "new-password", required: true });
  const sendReset = el("button", { type: "button", id: "send-reset", on: { click: () => act(
    () => api("POST", `/admin/users/${user.id}/password-reset`),
    (answer) => answer.body.detail,
  ) } }, "Email a reset link");
  const role = el("select", { id: "user-role" },
    ["user", "manager", "admin"].map((r) => el("option", { value: r, selected: r === user.role }, r)));
  const confirmDelete = el("span", { hidden: true },
    "Delete this user, their tasks and sessions? ",
    el("button", { type: "button", id: "confirm-delete", on: { click: () => act(
      () => api("DELETE", `/admin/users/${user.id}`),
      "Deleted",
    ).then(() => { location.hash = "#/users"; }) } }, "Yes, delete"));
  show(
    el("h1", {}, user.email),
    el("p", {}, `id ${user.id} · ${user.full_name ?? "no name"} · created ${user.created_at} · `,
      el("span", { id: "user-status" }, user.disabled ? "disabled" : "active"),
      " · second factor ",
      el("span", { id: "user-mfa" }, user.mfa_enabled ? "on" : "off")),
    message,
    el("form", { class: "toolbar", on: { submit: (e) => {
      e.preventDefault();
      act(() => api("PATCH", `/admin/users/${user.id}`, { json: { role: role.value } }), `Role set to ${role.value}`);
    } } },
      el("label", { for: "user-role" }, "Role"), role, el("button", { type: "submit", id: "save-role" }, "Save role")),
    el("div", { class: "actions" },
      el("button", { type: "button", id: "toggle-disabled", on: { click: () => act(
        () => api("PATCH", `/admin/users/${user.id}`, { json: { disabled: !user.disabled } }),
        user.disabled ? "Enabled" : "Disabled; their sessions are revoked",
      ) } }, user.disabled ? "Enable" : "Disable"),
      el("button", { type: "button", id: "revoke", on: { click: () => act(
        () => api("POST", `/admin/users/${user.id}/revoke-sessions`),
        "Every session revoked",
      ) } }, "Revoke sessions"),
      el("button", { type: "button", id: "reset-mfa", hidden: !user.mfa_enabled, on: { click: () => act(
        () => api("DELETE", `/admin/users/${user.id}/mfa`),
        "Second factor removed; their sessions are revoked",
      ) } }, "Reset second factor"),
      el("button", { type: "button", id: "delete", on: { click: () => { confirmDelete.hidden = false; } } }, "Delete…"),
      confirmDelete,
      el("a", { href: `#/audit/${user.id}`, id: "user-audit" }, "Audit events about this user")),
    el("h2", {}, "Password"),
    el("form", { class: "toolbar", id: "set-password", on: { submit: (e) => {
      e.preventDefault();
      act(() => api("POST", `/admin/users/${user.id}/password`, { json: { new_password: temporary.value } }),
        "Password set; their sessions are revoked. Tell them the temporary password and ask them to change it.");
    } } },
      el("label", { for: "temp-password" }, "Temporary password"), temporary,
      el("button", { type: "submit", id: "save-password" }, "Set password"),
      sendReset),
    el("h2", {}, `Sessions (${liveSessions} live)`),
    sessions.length
      ? table(["started", "last used", "address", "browser or app", ""], sessions.map((s) =>
        el("tr", {},
          el("td", {}, s.created_at), el("td", {}, s.last_used_at), el("td", {}, s.ip ?? "unknown"),
          el("td", {}, s.user_agent ?? "unknown"),
          el("td", {}, el("button", { type: "button", class: "end-session", "data-session": s.id, on: { click: () => act(
            () => api("DELETE", `/admin/users/${user.id}/sessions/${s.id}`),
            "Session ended: its tokens are refused from now on",
          ) } }, "End")))))
      : el("p", { id: "no-sessions" }, "No live sessions."),
    el("h2", {}, "Tasks"),
    tasks.length
      ? table(["id", "title", "done", "due"], tasks.map((t) =>
        el("tr", {}, el("td", {}, String(t.id)), el("td", {}, t.title), el("td", {}, t.completed ? "yes" : "no"), el("td", {}, t.due_date ?? ""))))
      : el("p", {}, "No tasks."),
  );
}

function createScreen() {
  const fieldError = (name) => el("span", { class: "field-error", id: `error-${name}` });
  const errors = { email: fieldError("email"), password: fieldError("password"), full_name: fieldError("full_name"), role: fieldError("role") };
  const message = el("p", { role: "alert", class: "error", id: "create-message" });
  const form = el("form", { class: "stack", id: "create", on: { submit: async (e) => {
    e.preventDefault();
    Object.values(errors).forEach((n) => { n.textContent = ""; });
    message.textContent = "";
    const json = { email: form.elements.email.value, password: form.elements.password.value, role: form.elements.role.value };
    if (form.elements.full_name.value) json.full_name = form.elements.full_name.value;
    try {
      const { body } = await api("POST", "/admin/users", { json });
      location.hash = `#/user/${body.id}`;
    } catch (error) {
      for (const [field, text] of Object.entries(error.body?.fields ?? {})) {
        if (errors[field]) errors[field].textContent = text;
      }
      message.textContent = describe(error);
    }
  } } },
    el("h1", {}, "Create user"),
    el("label", { for: "new-email" }, "Email"), el("input", { id: "new-email", name: "email", type: "email", required: true }), errors.email,
    el("label", { for: "new-password" }, "Password"), el("input", { id: "new-password", name: "password", type: "password", autocomplete: "new-password", required: true }), errors.password,
    el("label", { for: "new-name" }, "Full name (optional)"), el("input", { id: "new-name", name: "full_name" }), errors.full_name,
    el("label", { for: "new-role" }, "Role"),
    el("select", { id: "new-role", name: "role" }, ["user", "manager", "admin"].map((r) => el("option", { value: r }, r))), errors.role,
    message,
    el("button", { type: "submit" }, "Create"));
  show(form);
}

let auditKinds = null;

/** The audit kinds as the API describes them (its `/openapi.json`, read once). */
async function kindsOfEvents() {
  if (!auditKinds) {
    const resp = await fetch("/openapi.json", { headers: { Accept: "application/json" } });
    if (!resp.ok) throw new ApiError(resp.status, null, resp.headers);
    const doc = await resp.json();
    const kind = doc.paths["/admin/audit"].get.parameters.find((p) => p.name === "kind");
    auditKinds = ["", ...kind.schema.enum];
  }
  return auditKinds;
}

/** A field and its label, kept together when a toolbar wraps. */
function labelled(id, text, field) {
  return el("span", { class: "field" }, el("label", { for: id }, text), field);
}

/** A user named in an event: a link to their page, their id when they are gone. */
function userCell(id, email) {
  if (id === null || id === undefined) return el("td", {}, "");
  return el("td", {}, email ? el("a", { href: `#/user/${id}` }, email) : `#${id} (deleted)`);
}

/** An event's detail as "key: value" pairs, as text. */
function detailText(detail) {
  return Object.entries(detail ?? {})
    .map(([key, value]) => `${key}: ${typeof value === "object" && value !== null ? JSON.stringify(value) : value}`)
    .join("; ");
}

const AUDIT_FILTERS = { kind: "", actor_id: "", subject_id: "", ip: "", since: "", until: "", offset: 0 };

// `#/audit/<id>` opens the events about user <id>.
async function auditScreen(subject, filters = { ...AUDIT_FILTERS, subject_id: subject ?? "" }) {
  const query = new URLSearchParams({ limit: PAGE, offset: filters.offset });
  for (const key of ["kind", "actor_id", "subject_id", "ip"]) {
    if (filters[key]) query.set(key, filters[key]);
  }
  // Whole days, in UTC: from the start of `since` to the end of `until`.
  if (filters.since) query.set("since", `${filters.since}T00:00:00Z`);
  if (filters.until) {
    const next = new Date(`${filters.until}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    query.set("until", next.toISOString());
  }
  const { body: events, headers } = await api("GET", `/admin/audit?${query}`);
  const total = Number(headers.get("X-Total-Count") ?? events.length);
  const kinds = await kindsOfEvents();
  const kind = el("select", { id: "kind" }, kinds.map((k) => el("option", { value: k, selected: k === filters.kind }, k || "any kind")));
  const input = (key, props) => el("input", { id: `audit-${key.replace("_", "-")}`, value: filters[key], ...props });
  const fields = {
    actor_id: input("actor_id", { type: "number", min: 1, inputmode: "numeric" }),
    subject_id: input("subject_id", { type: "number", min: 1, inputmode: "numeric" }),
    ip: input("ip", {}),
    since: input("since", { type: "date" }),
    until: input("until", { type: "date" }),
  };
  const apply = (offset) => {
    const next = { kind: kind.value, offset: Math.max(0, offset) };
    for (const [key, field] of Object.entries(fields)) next[key] = field.value.trim();
    return auditScreen(null, next).catch((e) => show(errorLine(describe(e))));
  };
  show(
    el("h1", {}, "Audit log"),
    el("form", { class: "toolbar", id: "audit-filters", on: { submit: (e) => { e.preventDefault(); apply(0); } } },
      labelled("kind", "Kind", kind),
      labelled("audit-actor-id", "Actor id", fields.actor_id),
      labelled("audit-subject-id", "Subject id", fields.subject_id),
      labelled("audit-ip", "Address", fields.ip),
      labelled("audit-since", "From (UTC)", fields.since),
      labelled("audit-until", "To (UTC)", fields.until),
      el("button", { type: "submit" }, "Apply")),
    table(["at", "kind", "actor", "subject", "address", "detail"], events.map((a) =>
      el("tr", {},
        el("td", {}, a.at), el("td", {}, a.kind),
        userCell(a.actor_id, a.actor_email), userCell(a.subject_id, a.subject_email),
        el("td", {}, a.ip ?? ""), el("td", {}, detailText(a.detail))))),
    pager(total, filters.offset, apply),
  );
}

async function reportsScreen() {
  const { body: r } = await api("GET", "/reports");
  show(
    el("h1", {}, "Reports"),
    el("div", { class: "figures", id: "report-totals" },
      figure("accounts", r.totals.users), figure("tasks in all", r.totals.tasks_total),
      figure("tasks completed", r.totals.tasks_completed), figure("tasks open", r.totals.tasks_open)),
    table(["user", "tasks", "completed", "open"], r.reports.map((u) =>
      el("tr", {}, el("td", {}, u.email), el("td", {}, String(u.tasks_total)),
        el("td", {}, String(u.tasks_completed)), el("td", {}, String(u.tasks_open))))),
  );
}

document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
signInScreen();
