// The operator pages (/ops): the seed's success metrics, the review queue, reward budgets, webhook
// deliveries, badge definitions and links into the Temporal Web UI. Each section is shown only to
// the scopes the API lets read it, and each action only to those it lets act (the API decides in
// the end: a refused request is shown as refused).
import { announce, api, claims, el, mountSignIn, money, percent, signOut, token } from "/pages/common/api.js";
import { lineChart } from "/pages/common/charts.js";

const STAFF = ["operator", "compliance", "admin"];
// Who may do what, as the API's routes have it (badges/api/routes/): every staff scope reads.
const MAY = {
  decide: ["operator", "admin"], // POST /v1/admin/review-queue/{id}/decision
  releaseRewards: ["admin"], // POST /v1/admin/rewards/release-deferred
  setBudget: ["admin"], // PUT /v1/admin/reward-budgets/{scope}
  reevaluate: ["admin"], // POST /v1/admin/badges/{id}/reevaluate
  readAudit: ["compliance", "admin"], // GET /v1/admin/audit
};

const state = { scopes: [] };
const may = (action) => MAY[action].some((scope) => state.scopes.includes(scope));
const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "–");

function showSignIn() {
  for (const id of ["console", "account", "section-nav", "refused"]) document.getElementById(id).hidden = true;
  const root = document.getElementById("sign-in");
  root.hidden = false;
  mountSignIn(root, { scopes: STAFF, suggestions: ["ops@example.com"], onSignedIn: (signed) => start(signed) });
}

function start(signed) {
  state.scopes = signed.scopes.filter((scope) => STAFF.includes(scope));
  document.getElementById("sign-in").hidden = true;
  document.getElementById("account").hidden = false;
  document.getElementById("who").textContent = `Signed in as ${signed.sub} (${signed.scopes.join(", ")})`;
  if (!state.scopes.length) {
    document.getElementById("refused").hidden = false; // a member's token: nothing is asked for
    return;
  }
  document.getElementById("section-nav").hidden = false;
  const root = document.getElementById("console");
  root.hidden = false;
  const sections = [metricsSection(), reviewSection(), rewardsSection(), webhooksSection(), badgesSection(), workflowsSection()];
  if (may("readAudit")) sections.push(auditSection());
  document.getElementById("nav-audit").hidden = !may("readAudit");
  root.replaceChildren(...sections.map((section) => section.node));
  for (const section of sections) section.load();
}

/** A card with a heading, a refresh button and a body that `load` fills (errors shown in it). */
function section(id, title, intro, fill) {
  const body = el("div", { class: "stack", "aria-live": "polite" });
  const refresh = el("button", { type: "button", class: "secondary" }, "Refresh");
  const node = el(
    "section",
    { id, class: "card stack", "aria-labelledby": `${id}-title` },
    el("div", { class: "section-head" }, el("h2", { id: `${id}-title` }, title), refresh),
    intro ? el("p", { class: "muted small" }, intro) : null,
    body,
  );
  const load = async () => {
    body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try {
      body.replaceChildren(...[await fill(load)].flat());
    } catch (error) {
      const refused = error.status === 403 ? "Your scope may not see this. " : "";
      body.replaceChildren(el("p", { class: "form-error", role: "alert" }, `${refused}${error.message}`));
    }
  };
  refresh.addEventListener("click", load);
  return { node, load };
}

function table(headings, rows, empty) {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  return el(
    "div",
    { class: "table-scroll" },
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { scope: "col", class: h.number ? "number" : null }, h.label ?? h)))),
      el("tbody", {}, ...rows),
    ),
  );
}

// --- metrics -----------------------------------------------------------------------------------

function metricValue(metric, value) {
  if (value === null || value === undefined) return "–";
  if (metric.unit === "uplift") return `${value >= 0 ? "+" : ""}${(value * 100).toFixed(0)} %`;
  return percent(value);
}

function metPill(met) {
  if (met === null || met === undefined) return el("span", { class: "pill" }, "no verdict");
  return el("span", { class: `pill ${met ? "good" : "warn"}` }, met ? "target met" : "below target");
}

function figureOf(metric, reading) {
  if (metric.unit === "uplift")
    return `${reading.numerator.toFixed(2)} ${metric.numerator} against ${reading.denominator.toFixed(2)} ${metric.denominator}`;
  return `${reading.numerator} ${metric.numerator} of ${reading.denominator} ${metric.denominator}`;
}

function metricCard(metric) {
  const current = metric.current;
  const labels = metric.monthly.map((month) => month.label);
  const series = [{ name: "measured", values: metric.monthly.map((month) => month.value) }];
  if (metric.target !== null) series.push({ name: "target", values: metric.monthly.map(() => metric.target) });
  const rows = metric.monthly.map((month) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, month.label + (month.partial ? " (to date)" : "")),
      el("td", { class: "number" }, metricValue(metric, month.value)),
      el("td", {}, month.value === null ? "nobody to count" : figureOf(metric, month)),
    ),
  );
  return el(
    "article",
    { class: "card metric stack", "data-metric": metric.id, "aria-labelledby": `metric-${metric.id}` },
    el("header", {}, el("h3", { id: `metric-${metric.id}` }, metric.name), metPill(current.met)),
    el(
      "div",
      { class: "figure" },
      el("span", { class: "big", "data-role": "value" }, metricValue(metric, current.value)),
      el("span", {}, `${current.label} · target ${metric.targetText}`),
    ),
    el("p", { class: "muted small" }, current.value === null ? "Nobody to count in this window." : figureOf(metric, current)),
    lineChart(series, labels, { title: `${metric.name} by month (the last to date)`, format: (value) => metricValue(metric, value) }),
    el(
      "details",
      {},
      el("summary", {}, "By month, and how it is defined"),
      table(["Month", { label: "Value", number: true }, "Counted"], rows, "No months."),
      el("p", { class: "small" }, metric.definition),
    ),
  );
}

function metricsSection() {
  return section(
    "metrics",
    "Success metrics",
    "The seed's programme targets, computed from the data: the last 30 days first, then month by month (UTC).",
    async () => {
      const answer = await api("/v1/admin/metrics/success?months=6");
      return [
        el("p", { class: "muted small" }, `Computed ${when(answer.computedAt)}.`),
        el("div", { class: "metrics" }, ...answer.metrics.map(metricCard)),
      ];
    },
  );
}

// --- review queue ------------------------------------------------------------------------------

function reviewSection() {
  const status = el("select", { id: "review-status" }, ...["pending", "approved", "rejected"].map((s) => el("option", { value: s }, s)));
  const result = section(
    "reviews",
    "Review queue",
    "Bursts of events held back from awarding, and financial patterns that would earn a savings badge for money not saved." +
      (may("decide") ? "" : " Your scope may read the queue; operators and admins decide."),
    async () => {
      const items = await api(`/v1/admin/review-queue?status=${encodeURIComponent(status.value)}`);
      const rows = items.map((item) => {
        const actions = el("div", { class: "actions" });
        if (item.status === "pending" && may("decide")) {
          const decide = (approve) => async () => {
            for (const button of actions.querySelectorAll("button")) button.disabled = true;
            try {
              await api(`/v1/admin/review-queue/${encodeURIComponent(item.reviewId)}/decision`, { method: "POST", body: { approve } });
              // Accepted (202): a held burst's decision is applied by the member's workflow, shortly.
              const verb = approve ? "Approved" : "Rejected";
              actions.replaceChildren(el("span", { class: "small" }, `${verb}: being applied (Refresh to see it done)`));
              announce(`${verb}: ${item.reviewId}`, { tone: "good" });
            } catch (error) {
              announce(error.message, { tone: "bad" });
              for (const button of actions.querySelectorAll("button")) button.disabled = false;
            }
          };
          actions.append(
            el("button", { type: "button", onclick: decide(true), "aria-label": `Approve ${item.reviewId}` }, "Approve"),
            el("button", { type: "button", class: "danger", onclick: decide(false), "aria-label": `Reject ${item.reviewId}` }, "Reject"),
          );
        } else {
          actions.append(el("span", { class: "muted small" }, item.resolvedBy ? `${item.status} by ${item.resolvedBy}` : item.status));
        }
        return el(
          "tr",
          { "data-review": item.reviewId },
          el("td", {}, item.kind === "financial" ? "financial pattern" : "held burst"),
          el("td", { class: "id" }, item.userId),
          el("td", {}, item.eventType),
          el("td", { class: "number" }, String(item.eventCount)),
          el("td", {}, item.reason),
          el("td", {}, when(item.createdAt)),
          el("td", {}, actions),
        );
      });
      const headings = ["Kind", "Member (internal id)", "Type", { label: "Events", number: true }, "Reason", "Held since", "Decision"];
      return table(headings, rows, `No ${status.value} items.`);
    },
  );
  status.addEventListener("change", result.load);
  result.node.querySelector(".section-head").after(el("div", { class: "row" }, el("label", { for: "review-status" }, "Show"), status));
  return result;
}

// --- rewards -----------------------------------------------------------------------------------

function rewardsSection() {
  return section("rewards", "Reward budgets", "This month's cap of each budget, and how much of it is used.", async (reload) => {
    const [budgets, totals] = await Promise.all([api("/v1/admin/reward-budgets"), api("/v1/admin/metrics")]);
    const amount = (budget, value) => (budget.kind === "money" ? money(value, budget.currency || "GBP") : `${value} points`);
    const rows = budgets.map((budget) => {
      const meter = el("progress", { max: budget.monthlyLimit || 1, value: budget.used, "aria-label": `${budget.scope} used` });
      return el(
        "tr",
        {},
        el("td", {}, budget.scope === "*" ? "all rewards" : budget.scope),
        el("td", {}, budget.kind),
        el("td", { class: "number" }, amount(budget, budget.used)),
        el("td", { class: "number" }, amount(budget, budget.monthlyLimit)),
        el("td", {}, meter),
        el("td", {}, budget.policy),
      );
    });
    const byStatus = Object.entries(totals.rewardsByStatus || {});
    const parts = [
      table(["Budget", "Kind", { label: "Used", number: true }, { label: "Cap", number: true }, "Use", "When full"], rows, "No budgets set: rewards are not capped."),
      el("p", {}, "Rewards by status: ", byStatus.length ? byStatus.map(([s, n]) => `${s} ${n}`).join(", ") : "none yet."),
    ];
    if (may("releaseRewards")) {
      const release = el("button", { type: "button", class: "secondary" }, "Release deferred rewards");
      release.addEventListener("click", async () => {
        try {
          const answer = await api("/v1/admin/rewards/release-deferred", { method: "POST" });
          announce(`Released ${answer.granted} deferred rewards.`, { tone: "good" });
          await reload();
        } catch (error) {
          announce(error.message, { tone: "bad" });
        }
      });
      parts.push(release);
    }
    if (may("setBudget")) parts.push(budgetForm(reload));
    return parts;
  });
}

/** Admins set a monthly cap: for one badge's rewards, or (`*`) all of them, of one kind. */
function budgetForm(reload) {
  const field = (id, label, control) => [el("label", { for: id }, label), control];
  const scope = el("input", { id: "budget-scope", required: true, value: "*", spellcheck: "false" });
  const kind = el("select", { id: "budget-kind" }, el("option", { value: "points" }, "points"), el("option", { value: "money" }, "money (GBP)"));
  const limit = el("input", { id: "budget-limit", type: "number", min: "0", step: "1", required: true, inputmode: "numeric" });
  const policy = el(
    "select",
    { id: "budget-policy" },
    el("option", { value: "defer" }, "defer: grant next month"),
    el("option", { value: "withhold" }, "withhold: never grant"),
  );
  const form = el(
    "form",
    { class: "stack", "aria-labelledby": "budget-form-title" },
    el("h3", { id: "budget-form-title" }, "Set a monthly cap"),
    ...field("budget-scope", "Badge id (* for all rewards)", scope),
    ...field("budget-kind", "Kind", kind),
    ...field("budget-limit", "Monthly cap (points, or pounds for money)", limit),
    ...field("budget-policy", "When the cap is reached", policy),
    el("button", { type: "submit" }, "Save cap"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const inMoney = kind.value === "money";
    const body = {
      kind: kind.value,
      currency: inMoney ? "GBP" : null,
      monthlyLimit: Math.round(Number(limit.value) * (inMoney ? 100 : 1)),
      policy: policy.value,
    };
    try {
      await api(`/v1/admin/reward-budgets/${encodeURIComponent(scope.value.trim())}`, { method: "PUT", body });
      announce(`Cap saved for ${scope.value.trim()}.`, { tone: "good" });
      await reload();
    } catch (error) {
      announce(error.message, { tone: "bad" });
    }
  });
  return form;
}

// --- webhook deliveries ------------------------------------------------------------------------

function webhooksSection() {
  return section("webhooks", "Webhook deliveries", "Award webhooks sent to badge owners' systems, newest first.", async () => {
    const answer = await api("/v1/admin/webhook-deliveries?limit=50");
    const tone = { delivered: "good", pending: "", failed: "bad" };
    const rows = answer.deliveries.map((d) =>
      el(
        "tr",
        {},
        el("td", {}, d.badgeId),
        el("td", { class: "id" }, d.url),
        el("td", {}, el("span", { class: `pill ${tone[d.status] ?? ""}` }, d.status)),
        el("td", { class: "number" }, String(d.attempts)),
        el("td", {}, d.lastError || (d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : "–")),
        el("td", {}, when(d.updatedAt)),
      ),
    );
    return table(["Badge", "Target", "Status", { label: "Attempts", number: true }, "Last answer", "Updated"], rows, "No webhook deliveries yet.");
  });
}

// --- badges ------------------------------------------------------------------------------------

function badgesSection() {
  return section(
    "badges",
    "Badge definitions",
    "Every badge at its newest version; open one for its versions." + (may("reevaluate") ? " Re-evaluation re-checks members' progress under the newest version." : ""),
    async () => {
      const catalogue = await api("/v1/admin/badges");
      const rows = catalogue.badges.map((badge) => {
        const versions = el("div", { class: "versions stack" });
        const open = el("details", {}, el("summary", {}, `Versions of ${badge.badgeId}`), versions);
        open.addEventListener("toggle", async () => {
          if (!open.open || versions.childElementCount) return;
          try {
            const list = await api(`/v1/admin/badges/${encodeURIComponent(badge.badgeId)}/versions`);
            versions.replaceChildren(
              ...list.map((v) =>
                el("div", {}, el("p", { class: "small" }, `Version ${v.version}, ${when(v.createdAt)} by ${v.createdBy}`), el("pre", {}, JSON.stringify(v.definition.rule, null, 1))),
              ),
            );
          } catch (error) {
            versions.replaceChildren(el("p", { class: "form-error" }, error.message));
          }
        });
        const cells = [
          el("td", {}, el("strong", {}, badge.name), el("div", { class: "id" }, badge.badgeId)),
          el("td", {}, badge.kind),
          el("td", { class: "number" }, String(badge.version)),
          el("td", {}, el("span", { class: `pill ${badge.active ? "good" : ""}` }, badge.active ? "active" : "inactive")),
          el("td", {}, open),
        ];
        if (may("reevaluate")) {
          const outcome = el("span", { class: "small", role: "status" });
          const run = el("button", { type: "button", class: "secondary", "aria-label": `Re-evaluate ${badge.badgeId}` }, "Re-evaluate");
          run.addEventListener("click", async () => {
            run.disabled = true;
            try {
              const answer = await api(`/v1/admin/badges/${encodeURIComponent(badge.badgeId)}/reevaluate`, { method: "POST" });
              outcome.textContent = `Version ${answer.version}: ${answer.status}, ${answer.membersSignalled} members signalled${answer.done ? ", done" : ""}.`;
            } catch (error) {
              outcome.textContent = error.message;
            } finally {
              run.disabled = false;
            }
          });
          cells.push(el("td", {}, el("div", { class: "stack" }, run, outcome)));
        }
        return el("tr", {}, ...cells);
      });
      const headings = ["Badge", "Rule", { label: "Version", number: true }, "State", "History"];
      if (may("reevaluate")) headings.push("Re-evaluation");
      return table(headings, rows, "No badges defined.");
    },
  );
}

// --- Temporal Web UI links and the audit log: sections that answer a search ------------------

const textInput = (id, attributes = {}) => el("input", { id, name: id, spellcheck: "false", autocomplete: "off", ...attributes });

/** A card with a form; what `search()` answers replaces the results under it (nothing is asked before). */
function searchSection(id, title, intro, fields, submitLabel, search) {
  const results = el("div", { class: "stack", "aria-live": "polite" });
  const form = el(
    "form",
    { class: "stack" },
    ...fields.flatMap(([label, input]) => [el("label", { for: input.id }, label), input]),
    el("button", { type: "submit" }, submitLabel),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      results.replaceChildren(...[await search()].flat().filter(Boolean));
    } catch (error) {
      const text = error.status === 422 ? "That is not an internal id (a UUID)." : error.message;
      results.replaceChildren(el("p", { class: "form-error", role: "alert" }, text));
    }
  });
  const node = el(
    "section",
    { id, class: "card stack", "aria-labelledby": `${id}-title` },
    el("h2", { id: `${id}-title` }, title),
    el("p", { class: "muted small" }, intro),
    form,
    results,
  );
  return { node, load: () => {} };
}

function workflowsSection() {
  const member = textInput("member-id", { required: true, placeholder: "00000000-0000-0000-0000-000000000000" });
  return searchSection(
    "workflows",
    "A member's workflows in the Temporal Web UI",
    "By the member's internal id (as the review queue and audit log show it); nothing else names them.",
    [["Member's internal id", member]],
    "Show workflows",
    async () => {
      const answer = await api(`/v1/admin/members/${encodeURIComponent(member.value.trim())}/workflows`);
      const link = (href, text) => el("a", { href, target: "_blank", rel: "noopener noreferrer" }, text);
      return [
        el("p", {}, link(answer.allWorkflowsUrl, `All workflows of ${answer.memberId}`), ` in ${answer.temporalUiUrl} (namespace ${answer.namespace})`),
        el("ul", {}, ...answer.workflows.map((w) => el("li", {}, link(w.url, w.workflowId), ` – ${w.kind}`))),
        el("p", { class: "muted small" }, "Payloads open in the Web UI only through the audited codec endpoint (POST /codec/session first)."),
      ];
    },
  );
}

function auditSection() {
  const filters = {
    actor: textInput("audit-actor"),
    subject: textInput("audit-subject"),
    action: textInput("audit-action", { placeholder: "e.g. read.comparisons" }),
  };
  return searchSection(
    "audit",
    "Audit log",
    "Who reached whose data, when and why, oldest first; reading it is audited too.",
    [
      ["Who (a staff subject, member, system; empty: anyone)", filters.actor],
      ["Whose data (a member's internal id; empty: everyone)", filters.subject],
      ["Action (empty: any)", filters.action],
    ],
    "Show records",
    async () => {
      const query = new URLSearchParams({ limit: "100" });
      for (const [name, input] of Object.entries(filters)) if (input.value.trim()) query.set(name, input.value.trim());
      const page = await api(`/v1/admin/audit?${query}`);
      const rows = page.records.map((r) =>
        el(
          "tr",
          {},
          el("td", {}, when(r.at)),
          el("td", {}, `${r.actor} (${r.actorRole})`),
          el("td", {}, r.action),
          el("td", { class: "id" }, r.subject || "–"),
          el("td", { class: "id" }, r.resource),
          el("td", {}, r.purpose),
        ),
      );
      return [
        table(["When", "Who", "Action", "Whose", "What", "Why"], rows, "No records match."),
        page.nextAfterId ? el("p", { class: "muted small" }, "The first 100, oldest first; narrow the search for the rest.") : null,
      ];
    },
  );
}

document.addEventListener("badges:signed-out", showSignIn);
document.getElementById("sign-out").addEventListener("click", () => signOut());

const existing = claims(token());
if (existing && (!existing.exp || existing.exp * 1000 > Date.now())) start(existing);
else showSignIn();
