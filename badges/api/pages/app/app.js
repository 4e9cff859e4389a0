// The member dashboard (/app): sign-in, then every section from the API, kept current by the live
// stream (progress, awards, insights) without a reload. Improvement and next steps come before rank.
import { ApiError, announce, api, claims, download, el, money, mountSignIn, openStream, percent, present, saveBlob, signOut, token } from "/pages/common/api.js";
import { barChart, lineChart } from "/pages/common/charts.js";
import { calculators } from "/pages/app/calculators.js";

const state = {
  claims: null,
  stream: null,
  badges: new Map(), // badgeId → the badge as GET /v1/me/badges has it, updated by the stream
  consent: {},
  currency: "GBP",
  personas: [],
  aboutYouSaved: "", // kept across re-renders: the stream can redraw the form just after a save
};

const SCOPES = {
  open_banking: {
    title: "Linked bank data",
    what: "Read your transactions and balances from the banks you link, for saving and spending badges and your figures.",
    deletes: "your linked banks, all their transactions and balances, and the categories you corrected.",
    days: 90,
  },
  behaviour_tracking: {
    title: "Insights from your bank data",
    what: "Work out your health score, trends, predictions and goals from your transactions.",
    deletes: "your score, monthly figures, trends and predictions, your goals, and your part in peer statistics.",
    days: 365,
  },
  peer_comparison: {
    title: "Private comparison with people like you",
    what: "Count your figures, with others', in statistics released with differential privacy, and show you where you stand.",
    deletes: "your inputs to the next peer-statistics release and your contacts group's result.",
    days: 365,
  },
  demographics: {
    title: "About you (for peer groups)",
    what: "Your postcode district, age range, dependants and salary bracket, to form the groups you are compared with.",
    deletes: "your postcode district, age range, dependants and salary bracket, and the peer groups drawn from them.",
    days: 365,
  },
};

const CATEGORIES = {
  income_salary: "Salary",
  income_benefits: "Benefits",
  income_other: "Other income",
  savings: "Savings",
  transfer: "Own transfers",
  rent_mortgage: "Rent or mortgage",
  bills_utilities: "Bills",
  groceries: "Groceries",
  eating_out: "Eating out",
  fast_food: "Fast food",
  gambling: "Gambling",
  transport: "Transport",
  shopping: "Shopping",
  entertainment: "Entertainment",
  subscriptions: "Subscriptions",
  fees: "Fees",
  debt_repayment: "Debt repayments",
  cash: "Cash",
  other: "Other",
};
const NOT_LIMITABLE = new Set(["income_salary", "income_benefits", "income_other", "savings", "transfer", "debt_repayment"]);

const show = (minor) => money(minor, state.currency);
const compact = (major) =>
  new Intl.NumberFormat("en-GB", { style: "currency", currency: state.currency, notation: "compact", maximumFractionDigits: 1 }).format(major);
const monthName = (iso, style = "short") =>
  new Date(`${iso}T00:00:00Z`).toLocaleDateString("en-GB", { month: style, year: "numeric", timeZone: "UTC" });
const day = (iso) => new Date(iso).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });

function section(id, title, ...children) {
  return el("section", { id, class: "card", "aria-labelledby": `${id}-title` }, el("h2", { id: `${id}-title` }, title), ...children);
}

/** Fills `root` from `load()`; a 403 consent-required shows what to turn on instead. */
async function fill(root, load) {
  try {
    root.replaceChildren(...present([await load()]));
  } catch (error) {
    if (error instanceof ApiError && error.slug === "consent-required") {
      const scope = (error.message.match(/`(\w+)`/) || [])[1];
      root.replaceChildren(
        el("p", { class: "muted", "data-needs": scope || "" }, `This needs “${SCOPES[scope]?.title || scope}” to be on.`),
        el("p", {}, el("a", { href: "#privacy" }, "Choose what to share in Privacy")),
      );
    } else {
      root.replaceChildren(el("p", { class: "form-error" }, error.message));
    }
  }
}

// ---------------------------------------------------------------- sign-in and the frame

function showSignIn() {
  state.stream?.close();
  state.stream = null;
  document.getElementById("dashboard").hidden = true;
  document.getElementById("account").hidden = true;
  document.getElementById("section-nav").hidden = true;
  const root = document.getElementById("sign-in");
  root.hidden = false;
  mountSignIn(root, {
    scopes: ["user"],
    suggestions: ["alice@example.com", "bob@example.com"],
    onSignedIn: (signed) => start(signed),
  });
}

function setStreamState(stream) {
  const badge = document.getElementById("stream-state");
  badge.textContent = { live: "Live", reconnecting: "Reconnecting…", "signed-out": "Signed out" }[stream];
  badge.className = `status-dot who ${stream === "live" ? "live" : "off"}`;
  if (stream === "signed-out") signOut();
}

function notice(text) {
  document.getElementById("sign-in").prepend(el("p", { class: "pill", role: "status" }, text));
}

async function start(signed) {
  try {
    await api("/v1/me");
  } catch (error) {
    // An erased membership is refused for good (410): say so on the sign-in form.
    if (error.status === 410) {
      signOut();
      notice(error.message);
      return;
    }
    if (error.status === 401) return; // signed out already
  }
  state.claims = signed;
  document.getElementById("sign-in").hidden = true;
  document.getElementById("account").hidden = false;
  document.getElementById("section-nav").hidden = false;
  document.getElementById("who").textContent = `Signed in as ${signed.sub}`;
  const dashboard = document.getElementById("dashboard");
  dashboard.hidden = false;
  dashboard.replaceChildren(...frame());
  // Their events are the member's own: `userId` is the token's subject.
  document.getElementById("tools-body").replaceChildren(...calculators(signed.sub, state.currency));
  state.stream = openStream({ onMessage: onStreamMessage, onState: setStreamState });
  await Promise.all([loadConsent(), loadBadges()]);
  await Promise.all([loadMoney(), loadGoals(), loadComparisons()]);
}

function frame() {
  const celebration = el("div", { id: "celebration", class: "celebration", role: "status", "aria-live": "assertive", hidden: true });
  return [
    celebration,
    section(
      "overview",
      "Your overview",
      el(
        "div",
        { class: "grid three" },
        el("div", { id: "health", class: "stack" }, el("p", { class: "muted" }, "Loading your health score…")),
        el("div", { id: "savings-rate", class: "stack" }),
        el(
          "div",
          { class: "stack" },
          el("h3", {}, "Insights"),
          el("ul", { id: "insights", class: "insights", "aria-live": "polite" }, el("li", { class: "muted", id: "no-insights" }, "New insights appear here as they arrive.")),
        ),
      ),
    ),
    section(
      "badges",
      "Your badges",
      el("div", { class: "grid two" },
        el("div", { class: "stack" }, el("h3", {}, "In progress"), el("ul", { id: "badges-progress", class: "badge-list" })),
        el("div", { class: "stack" }, el("h3", {}, "Earned"), el("ul", { id: "badges-earned", class: "badge-list" }))),
      el("details", {}, el("summary", {}, "Your rewards"), el("div", { id: "rewards" })),
    ),
    section(
      "money",
      "Your money",
      el("div", { id: "money-body", class: "stack" }, el("p", { class: "muted" }, "Loading…")),
      el("h3", {}, "Recent transactions"),
      el("div", { id: "transactions" }, el("p", { class: "muted" }, "Loading…")),
    ),
    section("banks", "Linked banks", el("div", { id: "banks-body", class: "stack" })),
    section("goals", "Your goals", el("div", { class: "grid two" }, el("div", { id: "goals-body", class: "stack" }), goalForm())),
    section("compare", "How you compare", el("div", { id: "compare-body", class: "stack" })),
    section("tools", "Calculators", el("div", { id: "tools-body", class: "grid two" })),
    section(
      "privacy",
      "Privacy and your data",
      el("div", { id: "consent-body", class: "stack" }),
      el("div", { class: "grid two" }, exportPanel(), deletePanel()),
    ),
  ];
}

// ---------------------------------------------------------------- the live stream

function onStreamMessage({ type, data }) {
  if (type === "progress") {
    const badge = state.badges.get(data.badgeId);
    if (badge) {
      badge.progress = data.value;
      if (data.target) badge.progressTarget = data.target;
      renderBadges();
    }
  } else if (type === "award") {
    celebrate(data);
  } else if (type === "insight") {
    addInsight(data);
    if (data.type === "consent") refreshAfterConsent();
    else refreshMoney();
  }
}

function celebrate(award) {
  const badge = state.badges.get(award.badgeId);
  const name = badge?.name || award.badgeId;
  if (badge) {
    badge.awarded = true;
    badge.awardedAt = award.awardedAt;
    badge.awards = [...(badge.awards || []), award];
  }
  renderBadges();
  const banner = document.getElementById("celebration");
  banner.replaceChildren(
    el("p", { class: "celebration-title" }, el("span", { "aria-hidden": "true" }, "★ "), `Badge earned: ${name}`),
    el("p", {}, badge?.reward ? `Well done! Your reward: ${rewardText(badge.reward)}.` : "Well done! It is in your earned badges."),
    el("button", { type: "button", class: "secondary", onclick: () => (banner.hidden = true) }, "Close"),
  );
  banner.hidden = false;
  const card = document.querySelector(`[data-badge-id="${CSS.escape(award.badgeId)}"]`);
  card?.classList.add("just-earned");
  setTimeout(() => card?.classList.remove("just-earned"), 10_000);
  loadRewards();
}

function addInsight(data) {
  document.getElementById("no-insights")?.remove();
  let text = data.message || "Something new in your figures.";
  if (data.type === "consent")
    text = `${SCOPES[data.scope]?.title || data.scope}: ${data.status}${data.expiresAt ? ` (until ${day(data.expiresAt)})` : ""}.`;
  else if (data.type === "bank_connection")
    text = `A linked bank is now: ${(STATUS_WORDS[data.status] || [data.status])[0].toLowerCase()}.`;
  document.getElementById("insights").prepend(el("li", { class: `insight ${data.kind || data.type || ""}` }, text));
}

// ---------------------------------------------------------------- badges

function rewardText(reward) {
  if (!reward) return "";
  if (reward.kind === "points") return `${reward.points} points`;
  if (reward.kind === "money") return money(reward.amountMinor, reward.currency);
  return reward.kind;
}

async function loadBadges() {
  let mine;
  try {
    mine = await api("/v1/me/badges");
  } catch (error) {
    document.getElementById("badges-progress").replaceChildren(el("li", { class: "form-error" }, error.message));
    return;
  }
  state.badges = new Map(mine.badges.map((badge) => [badge.badgeId, badge]));
  renderBadges();
  await loadRewards();
}

function badgeItem(badge) {
  const target = badge.progressTarget || badge.target;
  const left = target ? Math.max(target - badge.progress, 0) : null;
  const earnedTiers = new Set((badge.awards || []).map((award) => award.instance));
  const id = `badge-${badge.badgeId}`;
  const parts = [
    el("h4", { id: `${id}-name` }, badge.name),
    el("p", { class: "muted small" }, badge.description),
  ];
  if (badge.tiers?.length)
    parts.push(
      el("p", { class: "row" }, "Tiers:", ...badge.tiers.map((tier) => el("span", { class: `pill ${earnedTiers.has(tier) ? "good" : ""}` }, `${tier}${earnedTiers.has(tier) ? " ✓" : ""}`))),
    );
  if (target && !(badge.awarded && !badge.tiers)) {
    parts.push(
      el("progress", { max: target, value: Math.min(badge.progress, target), "aria-labelledby": `${id}-name`, "aria-describedby": `${id}-left` }),
      el("p", { id: `${id}-left`, class: "small" }, `${badge.progress} of ${target}${left ? ` · ${left} to go` : ""}`),
    );
  }
  if (badge.reward) parts.push(el("p", { class: "small" }, `Reward: ${rewardText(badge.reward)}`));
  if (badge.awarded && badge.awardedAt) parts.push(el("p", { class: "small good-text" }, `Earned ${day(badge.awardedAt)}`));
  for (const award of badge.awards || []) parts.push(walletButton(badge, award));
  return el("li", { class: `badge ${badge.awarded ? "earned" : ""}`, "data-badge-id": badge.badgeId }, ...parts);
}

/** "Add to wallet": the award as a signed Open Badges credential (a VC-JWT file) to keep, show an
 * employer or load into a wallet; it names the member only by a salted hash of their email. */
function walletButton(badge, award) {
  const status = el("span", { role: "status", class: "small" });
  const tier = (badge.awards || []).length > 1 ? ` (${award.instance})` : "";
  const button = el("button", { type: "button", class: "secondary small" }, `Add to wallet${tier}`);
  button.addEventListener("click", async () => {
    status.textContent = "";
    try {
      const issued = await api(`/v1/me/badges/${encodeURIComponent(badge.badgeId)}/credentials/${encodeURIComponent(award.instance)}`);
      saveBlob(new Blob([issued.jwt], { type: issued.mediaType }), issued.fileName);
      status.textContent = `Saved as ${issued.fileName}: a signed credential anyone can check.`;
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return el("p", { class: "row" }, button, status);
}

const NEXT_BADGES = 4; // in progress, shown at once: the closest; the rest one click away

function renderBadges() {
  const all = [...state.badges.values()];
  // Closest to done first: the next step is what motivates.
  const share = (badge) => (badge.progressTarget ? badge.progress / badge.progressTarget : 0);
  // Then the quickest to finish.
  const open = all
    .filter((badge) => !badge.awarded)
    .sort((a, b) => share(b) - share(a) || (a.progressTarget ?? Infinity) - (b.progressTarget ?? Infinity));
  const moreOpen = document.querySelector("#badges-progress .more details")?.open;
  const earned = all.filter((badge) => badge.awarded);
  const justEarned = new Set([...document.querySelectorAll(".just-earned")].map((node) => node.dataset.badgeId));
  const more = open.slice(NEXT_BADGES);
  document.getElementById("badges-progress").replaceChildren(
    ...open.slice(0, NEXT_BADGES).map(badgeItem),
    ...(more.length
      ? [el("li", { class: "more" }, el("details", { open: moreOpen }, el("summary", {}, `${more.length} more badges to aim for`), el("ul", { class: "badge-list" }, ...more.map(badgeItem))))]
      : []),
  );
  document
    .getElementById("badges-earned")
    .replaceChildren(...(earned.length ? earned.map(badgeItem) : [el("li", { class: "muted" }, "None yet: your first is closer than you think.")]));
  for (const id of justEarned) {
    const card = document.querySelector(`[data-badge-id="${CSS.escape(id)}"]`);
    card?.classList.add("just-earned");
    setTimeout(() => card?.classList.remove("just-earned"), 10_000);
  }
}

async function loadRewards() {
  await fill(document.getElementById("rewards"), async () => {
    const ledger = await api("/v1/me/rewards");
    if (!ledger.rewards.length) return el("p", { class: "muted" }, "Rewards for the badges you earn appear here.");
    const moneyTotal = Object.entries(ledger.moneyGrantedMinor).map(([currency, minor]) => money(minor, currency)).join(", ");
    return [
      el("p", {}, `${ledger.pointsGranted} points${moneyTotal ? ` and ${moneyTotal}` : ""} granted.`),
      el("div", { class: "table-scroll" }, el("table", {},
        el("caption", { class: "visually-hidden" }, "Your rewards"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Badge"), el("th", { scope: "col" }, "Reward"), el("th", { scope: "col" }, "Status"))),
        el("tbody", {}, ...ledger.rewards.map((reward) => el("tr", {},
          el("td", {}, state.badges.get(reward.badgeId)?.name || reward.badgeId),
          el("td", {}, reward.kind === "money" ? money(reward.amount, reward.currency) : `${reward.amount} points`),
          el("td", {}, reward.status + (reward.reason ? `: ${reward.reason}` : ""))))))),
    ];
  });
}

// ---------------------------------------------------------------- money: score, trends, spending, transactions

let moneyTimer = null;

async function loadMoney() {
  clearTimeout(moneyTimer);
  await Promise.all([loadBanks(), loadDashboard(), loadTransactions()]);
}

async function loadDashboard() {
  const health = document.getElementById("health");
  const rate = document.getElementById("savings-rate");
  let dashboard;
  try {
    dashboard = await api("/v1/me/dashboard");
  } catch (error) {
    for (const root of [health, rate]) await fill(root, () => Promise.reject(error));
    health.prepend(el("h3", {}, "Health score"));
    rate.replaceChildren(el("h3", {}, "Savings rate"), el("p", { class: "muted" }, "Shown once insights are on."));
    await fill(document.getElementById("money-body"), () => Promise.reject(error));
    return;
  }
  if (dashboard.status === "waiting") {
    const waiting = el("p", { class: "muted" }, "Your figures are being worked out from your bank data: this takes a moment after you link a bank.");
    health.replaceChildren(el("h3", {}, "Health score"), waiting.cloneNode(true));
    rate.replaceChildren(el("h3", {}, "Savings rate"));
    document.getElementById("money-body").replaceChildren(waiting);
    moneyTimer = setTimeout(loadMoney, 3000);
    return;
  }
  renderHealth(health, dashboard);
  renderSavingsRate(rate, dashboard);
  renderMoney(document.getElementById("money-body"), dashboard);
}

function renderHealth(root, dashboard) {
  const score = dashboard.health;
  if (!score || score.score === null || score.score === undefined) {
    root.replaceChildren(el("h3", {}, "Health score"), el("p", { class: "muted" }, "Not enough months of data for a score yet."));
    return;
  }
  const tone = { healthy: "good", coping: "warn", vulnerable: "bad" }[score.band] || "";
  const observed = score.components.filter((part) => part.observed);
  // The strongest first, then where the next points are.
  const strongest = [...observed].sort((a, b) => b.score - a.score)[0];
  const next = [...observed].sort((a, b) => a.score - b.score)[0];
  root.replaceChildren(...present([
    el("h3", {}, "Health score"),
    el("p", { class: "big", id: "health-score" }, `${score.score}`, el("span", { class: "muted small" }, " / 100")),
    el("p", {}, el("span", { class: `pill ${tone}`, id: "health-band" }, score.band)),
    strongest ? el("p", {}, el("strong", {}, `Going well: ${strongest.label.toLowerCase()}. `), strongest.reason) : null,
    next && next !== strongest ? el("p", {}, el("strong", {}, `Next step: ${next.label.toLowerCase()}. `), next.reason) : null,
    el("details", {}, el("summary", {}, "What makes up your score"),
      el("ul", { class: "components" }, ...score.components.map((part) =>
        el("li", {}, el("strong", {}, part.label), part.observed ? ` ${part.score} / 100: ` : " (not counted): ", part.reason)))),
  ]));
}

function renderSavingsRate(root, dashboard) {
  const complete = dashboard.months.filter((month) => month.complete);
  const last = complete.at(-1);
  const before = complete.at(-2);
  const parts = [el("h3", {}, "Savings rate")];
  if (!last) {
    parts.push(el("p", { class: "muted" }, "Shown after your first complete month."));
  } else {
    parts.push(el("p", { class: "big", id: "savings-rate-value" }, percent(last.savingsRate)), el("p", { class: "muted" }, `of your income in ${monthName(last.month, "long")}`));
    if (before && before.savingsRate !== null) {
      const change = last.savingsRate - before.savingsRate;
      const than = monthName(before.month, "long");
      const words =
        Math.abs(change) < 0.005 ? `About the same as ${than}.`
        : change > 0 ? `Up ${percent(change)} on ${than}: nice.`
        : `${percent(-change)} below ${than}: next month is a fresh start.`;
      parts.push(el("p", {}, words));
    }
  }
  if (dashboard.totalSavedMinor) parts.push(el("p", {}, `Saved in all: ${show(dashboard.totalSavedMinor)}`));
  root.replaceChildren(...parts);
}

function renderMoney(root, dashboard) {
  // Complete months only: the month under way would read as a sudden drop.
  const months = dashboard.months.filter((month) => month.complete);
  const labels = months.map((month) => monthName(month.month));
  const trendChart = lineChart(
    [
      { name: "Income", values: months.map((month) => month.incomeMinor / 100) },
      { name: "Spending", values: months.map((month) => month.spendingMinor / 100) },
      { name: "Saving", values: months.map((month) => month.savingsMinor / 100) },
    ],
    labels,
    { title: "Income, spending and saving by month", format: (value) => show(Math.round(value * 100)), tick: compact },
  );
  const last = months.at(-1);
  const spending = last
    ? Object.entries(last.spendingByCategory).filter(([, minor]) => minor > 0).sort((a, b) => b[1] - a[1])
    : [];
  const spendingChart = barChart(
    spending.map(([category, minor]) => ({ label: CATEGORIES[category] || category, value: minor / 100 })),
    { title: last ? `Spending by category, ${monthName(last.month, "long")}` : "Spending by category", format: (value) => show(Math.round(value * 100)) },
  );
  root.replaceChildren(...present([
    el("div", { class: "grid two" },
      el("figure", { class: "stack", id: "trends" }, el("figcaption", {}, el("h3", {}, "Month by month")), trendChart, trendTable(dashboard.trends)),
      yearOnYear(months),
      el("figure", { class: "stack", id: "spending" }, el("figcaption", {}, el("h3", {}, "Where your money went")), spendingChart,
        el("details", {}, el("summary", {}, "The figures"),
          el("ul", { class: "small spending-list" }, ...spending.map(([category, minor]) => el("li", {}, `${CATEGORIES[category] || category}: ${show(minor)}`)))))),
    predictionText(dashboard.prediction),
  ]));
}

/** Spending in each of the last 12 complete months against the same month a year before. */
function yearOnYear(months) {
  const byMonth = new Map(months.map((month) => [month.month, month]));
  const yearBefore = (iso) => `${Number(iso.slice(0, 4)) - 1}${iso.slice(4)}`;
  const recent = months.slice(-12);
  const before = recent.map((month) => byMonth.get(yearBefore(month.month))?.spendingMinor ?? null);
  const heading = el("figcaption", {}, el("h3", {}, "This year against last year"));
  if (before.every((value) => value === null))
    return el("figure", { class: "stack", id: "year-on-year" }, heading,
      el("p", { class: "muted" }, "This shows once your history reaches back a year and a month."));
  const chart = lineChart(
    [
      { name: "Spending this year", values: recent.map((month) => month.spendingMinor / 100) },
      { name: "A year before", values: before.map((value) => (value === null ? null : value / 100)) },
    ],
    recent.map((month) => monthName(month.month)),
    { title: "Spending by month, against the same month a year before", format: (value) => show(Math.round(value * 100)), tick: compact },
  );
  return el("figure", { class: "stack", id: "year-on-year" }, heading, chart);
}

const TRENDS = [
  ["spending_minor", "Spending", false],
  ["income_minor", "Income", true],
  ["savings_minor", "Saving", true],
  ["spending:fast_food", "Fast food", false],
  ["spending:gambling", "Gambling", false],
];

function changeText(change, upIsGood) {
  if (change === null || change === undefined) return "–";
  const better = change === 0 ? null : change > 0 === upIsGood;
  const words = `${change > 0 ? "up" : change < 0 ? "down" : "no change"}${change ? ` ${Math.abs(Math.round(change * 100))} %` : ""}`;
  return better === null ? words : `${words} (${better ? "better" : "worse"})`;
}

function trendTable(trends) {
  const rows = TRENDS.filter(([key]) => trends[key]?.length).map(([key, name, upIsGood]) => {
    const last = trends[key].at(-1);
    return el("tr", {}, el("th", { scope: "row" }, name), el("td", { class: "number" }, show(last.value)),
      el("td", {}, changeText(last.monthOnMonth, upIsGood)), el("td", {}, changeText(last.yearOnYear, upIsGood)));
  });
  const month = Object.values(trends)[0]?.at(-1)?.month;
  return el("div", { class: "table-scroll" }, el("table", { id: "trend-table" },
    el("caption", {}, month ? `${monthName(month, "long")} against the month before and a year before` : "Trends"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "What"), el("th", { scope: "col", class: "number" }, "Amount"), el("th", { scope: "col" }, "Month on month"), el("th", { scope: "col" }, "Year on year"))),
    el("tbody", {}, ...rows)));
}

function predictionText(prediction) {
  if (!prediction) return null;
  return el("p", { id: "prediction" },
    `This month you are heading for ${show(prediction.predictedSpendingMinor)} of spending and ${show(prediction.predictedSavingsMinor)} of saving` +
      (prediction.predictedSavingsRate !== null && prediction.predictedSavingsRate !== undefined ? ` (${percent(prediction.predictedSavingsRate)} of income).` : "."));
}

async function loadTransactions() {
  await fill(document.getElementById("transactions"), async () => {
    const page = await api("/v1/me/transactions?limit=15");
    if (!page.transactions.length) return el("p", { class: "muted" }, "No transactions yet.");
    return el("div", { class: "table-scroll" }, el("table", { id: "transactions-table" },
      el("caption", { class: "visually-hidden" }, "Your latest transactions, newest first"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Date"), el("th", { scope: "col" }, "What"), el("th", { scope: "col", class: "number" }, "Amount"), el("th", { scope: "col" }, "Category"))),
      el("tbody", {}, ...page.transactions.map(transactionRow))));
  });
}

function transactionRow(item) {
  const id = `category-${item.id}`;
  const label = item.merchantName || item.description;
  const select = el("select", { id, "aria-label": `Category for ${label} on ${item.postedDate}` },
    ...Object.entries(CATEGORIES).map(([value, name]) => el("option", { value, selected: value === item.category }, name)));
  const source = el("span", { class: "muted small" }, item.categorySource === "member" ? " · set by you" : item.pending ? " · pending" : "");
  select.addEventListener("change", async () => {
    try {
      const updated = await api(`/v1/me/transactions/${encodeURIComponent(item.id)}`, { method: "PATCH", body: { category: select.value } });
      source.textContent = updated.categorySource === "member" ? " · set by you" : "";
      announce(`${label}: now ${CATEGORIES[updated.category]}. Thanks, your figures will follow.`, { tone: "good" });
    } catch (error) {
      announce(error.message, { tone: "bad" });
    }
  });
  return el("tr", {}, el("td", {}, item.postedDate), el("td", {}, label),
    el("td", { class: `number ${item.amountMinor > 0 ? "good-text" : ""}` }, money(item.amountMinor, item.currency)),
    el("td", {}, select, source));
}

// ---------------------------------------------------------------- linked banks

const STATUS_WORDS = {
  syncing: ["Syncing", "warn"],
  active: ["Up to date", "good"],
  degraded: ["Delayed", "warn"],
  login_required: ["Your bank asks you to sign in again", "bad"],
  disconnected: ["Disconnected", ""],
};

async function loadBanks() {
  await fill(document.getElementById("banks-body"), async () => {
    const { connections } = await api("/v1/me/bank/connections");
    const currency = connections.flatMap((connection) => connection.accounts).find((account) => account.currency)?.currency;
    if (currency) state.currency = currency;
    if (connections.some((connection) => connection.status === "syncing")) moneyTimer = setTimeout(loadMoney, 3000);
    const list = el("ul", { class: "bank-list", id: "bank-list" }, ...connections.map(bankItem));
    if (state.consent.open_banking?.status !== "active" && !connections.length)
      return el("p", {}, "Linked bank data is off, so nothing from your bank is held. ",
        el("a", { href: "#privacy" }, "Turn it on in Privacy"), " to link a bank.");
    return [connections.length ? list : el("p", { class: "muted" }, "No bank linked yet."), await linkForm()];
  });
}

function bankItem(connection) {
  const [words, tone] = STATUS_WORDS[connection.status] || [connection.status, ""];
  const name = connection.institutionName || connection.provider;
  const actions = el("div", { class: "row" });
  if (connection.status === "login_required")
    actions.append(el("button", { type: "button", onclick: () => relink(connection) }, `Re-link ${name}`));
  if (connection.status !== "disconnected")
    actions.append(el("button", { type: "button", class: "secondary", onclick: () => disconnect(connection, name) }, `Disconnect ${name}`));
  return el("li", { class: "stack", "data-connection-id": connection.id },
    el("p", {}, el("strong", {}, name), " ", el("span", { class: `pill ${tone}` }, words)),
    el("p", { class: "muted small" }, connection.lastSyncedAt ? `Last updated ${new Date(connection.lastSyncedAt).toLocaleString("en-GB")}` : "Not synced yet"),
    el("ul", { class: "small" }, ...connection.accounts.map((account) =>
      el("li", {}, `${account.name}${account.mask ? ` ••${account.mask}` : ""}${account.balanceMinor !== null ? `: ${money(account.balanceMinor, account.currency)}` : ""}`))),
    actions);
}

async function linkForm() {
  if (!state.personas.length) {
    try {
      state.personas = (await api("/v1/dev/sandbox/personas")).personas;
    } catch {
      return el("p", { class: "muted" },
        "Link a bank from the Badges mobile app: this page loads nothing from other sites, so your bank's own Link screen is not shown here.");
    }
  }
  const select = el("select", { id: "persona" }, ...state.personas.map((persona) =>
    el("option", { value: persona.username }, `${persona.username}: ${persona.description}`)));
  const form = el("form", { class: "stack", id: "link-form", "aria-labelledby": "link-title" },
    el("h3", { id: "link-title" }, "Link a bank (local sandbox)"),
    el("p", { class: "muted small" }, "On a development server the sandbox bank stands in for your bank's Link screen. Pick whose history it makes up."),
    el("label", { for: "persona" }, "Sandbox person"), select,
    el("button", { type: "submit" }, "Link this bank"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const start = await api("/v1/me/bank/link-token", { method: "POST", body: { provider: "plaid" } });
      const done = await api("/v1/dev/sandbox/link", { method: "POST", body: { linkToken: start.linkToken, username: select.value } });
      const linked = await api("/v1/me/bank/connections", { method: "POST", body: { provider: "plaid", publicToken: done.publicToken } });
      announce(`${linked.institutionName || "Your bank"} is linked: your transactions are on their way.`, { tone: "good" });
      await loadMoney();
    } catch (error) {
      announce(error.message, { tone: "bad" });
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** Link in update mode (the sandbox standing in for the bank's sign-in): the same connection comes back. */
async function relink(connection) {
  try {
    const start = await api("/v1/me/bank/link-token", { method: "POST", body: { provider: "plaid", connectionId: connection.id } });
    // In update mode the sandbox repairs the item's login: the persona is the item's already.
    const done = await api("/v1/dev/sandbox/link", { method: "POST", body: { linkToken: start.linkToken, username: "user_good" } });
    await api("/v1/me/bank/connections", { method: "POST", body: { provider: "plaid", publicToken: done.publicToken } });
    announce("Thanks: your bank is syncing again.", { tone: "good" });
    await loadMoney();
  } catch (error) {
    announce(error.message, { tone: "bad" });
  }
}

async function disconnect(connection, name) {
  if (!confirm(`Disconnect ${name}? Its transactions will be deleted.`)) return;
  try {
    await api(`/v1/me/bank/connections/${connection.id}`, { method: "DELETE" });
    announce(`${name} disconnected.`);
    await loadMoney();
  } catch (error) {
    announce(error.message, { tone: "bad" });
  }
}

// ---------------------------------------------------------------- goals

async function loadGoals() {
  await fill(document.getElementById("goals-body"), async () => {
    const { goals } = await api("/v1/me/goals");
    if (!goals.length) return el("p", { class: "muted" }, "No goals yet: set one below.");
    return el("ul", { class: "goal-list", id: "goal-list" }, ...goals.map(goalItem));
  });
}

function goalItem(goal) {
  const progress = goal.progress;
  const id = `goal-${goal.id}`;
  const parts = [el("h3", { id: `${id}-name` }, goal.name)];
  if (goal.kind === "save") {
    parts.push(el("p", { class: "small muted" }, `Save ${show(goal.targetMinor)}${goal.deadline ? ` by ${day(goal.deadline)}` : ""}`));
    if (progress) {
      parts.push(
        el("progress", { max: 100, value: Math.min(progress.percent, 100), "aria-labelledby": `${id}-name` }),
        el("p", {}, `${show(progress.savedMinor)} saved so far (${progress.percent} %).`),
      );
    }
  } else {
    parts.push(el("p", { class: "small muted" }, `Keep ${CATEGORIES[goal.category] || goal.category} under ${show(goal.limitMinor)} a month`));
    if (progress) {
      parts.push(
        el("progress", { max: 100, value: Math.min(progress.percent, 100), "aria-labelledby": `${id}-name` }),
        el("p", {}, progress.remainingMinor >= 0 ? `${show(progress.remainingMinor)} left this month.` : `${show(-progress.remainingMinor)} over this month.`),
      );
    }
  }
  if (goal.reachedAt) parts.push(el("p", { class: "good-text" }, `Reached ${day(goal.reachedAt)}: well done!`));
  else if (progress?.reason) parts.push(el("p", { class: "small" }, progress.reason));
  else if (!progress) parts.push(el("p", { class: "small muted" }, "Progress appears after your next evaluation."));
  return el("li", { class: `goal ${progress?.atRisk ? "at-risk" : ""}`, "data-goal-id": goal.id, "data-measured": Boolean(progress) }, ...parts);
}

function goalForm() {
  const kind = el("select", { id: "goal-kind", name: "kind" }, el("option", { value: "save" }, "Save an amount"), el("option", { value: "limit" }, "Keep a category under a monthly limit"));
  const category = el("select", { id: "goal-category", name: "category" },
    ...Object.entries(CATEGORIES).filter(([value]) => !NOT_LIMITABLE.has(value)).map(([value, name]) => el("option", { value }, name)));
  const saveFields = el("div", { class: "stack", id: "goal-save-fields" },
    el("label", { for: "goal-target" }, "Amount to save"), el("input", { id: "goal-target", name: "target", type: "number", min: "0.01", step: "0.01", inputmode: "decimal" }),
    el("label", { for: "goal-deadline" }, "By (optional)"), el("input", { id: "goal-deadline", name: "deadline", type: "date" }));
  const limitFields = el("div", { class: "stack", id: "goal-limit-fields", hidden: true },
    el("label", { for: "goal-category" }, "Category"), category,
    el("label", { for: "goal-limit" }, "Monthly limit"), el("input", { id: "goal-limit", name: "limit", type: "number", min: "0.01", step: "0.01", inputmode: "decimal" }));
  kind.addEventListener("change", () => {
    saveFields.hidden = kind.value !== "save";
    limitFields.hidden = kind.value !== "limit";
  });
  const error = el("p", { class: "form-error", role: "alert" });
  const form = el("form", { class: "stack", id: "goal-form", "aria-labelledby": "goal-form-title" },
    el("h3", { id: "goal-form-title" }, "Add a goal"),
    el("label", { for: "goal-name" }, "Name"), el("input", { id: "goal-name", name: "name", required: true, maxlength: "100" }),
    el("label", { for: "goal-kind" }, "Kind"), kind, saveFields, limitFields, error,
    el("button", { type: "submit" }, "Add goal"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const minor = (input) => Math.round(Number(form.elements[input].value) * 100);
    const body = kind.value === "save"
      ? { kind: "save", name: form.elements.name.value, targetMinor: minor("target"), ...(form.elements.deadline.value ? { deadline: form.elements.deadline.value } : {}) }
      : { kind: "limit", name: form.elements.name.value, category: category.value, limitMinor: minor("limit") };
    try {
      await api("/v1/me/goals", { method: "POST", body });
      form.reset();
      kind.dispatchEvent(new Event("change"));
      announce(`Goal added: ${body.name}.`, { tone: "good" });
      await loadGoals();
      // A new goal is measured by an evaluation it asks for: show its progress when it comes.
      for (let tries = 0; tries < 15 && document.querySelector("#goal-list .goal:not([data-measured])"); tries++) {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        await loadGoals();
      }
    } catch (failure) {
      error.textContent = failure.problem?.errors?.map((item) => `${item.field.split(".").at(-1)}: ${item.message}`).join("; ") || failure.message;
    }
  });
  return form;
}

// ---------------------------------------------------------------- peer comparisons

const METRICS = { savingsRate: "savings rate", spending: "spending", fastFoodShare: "share spent on fast food" };
const DIMENSIONS = { postcode: "where you live", salary_bracket: "salary", dependants: "family size", age_range: "age", contacts: "your contacts" };
// The API's reasons are phrases naming scopes in backticks: a sentence with the scopes' titles.
const sentence = (text) => {
  const plain = text
    .replace(/`(\w+)`/g, (_, scope) => `“${SCOPES[scope]?.title || scope}”`)
    .replace("PUT /v1/me/profile", "the About you form in Privacy");
  return plain.charAt(0).toUpperCase() + plain.slice(1) + (/[.!?]$/.test(plain) ? "" : ".");
};

async function loadComparisons() {
  await fill(document.getElementById("compare-body"), async () => {
    const found = await api("/v1/me/comparisons");
    const note = el("p", { class: "muted small privacy-note" },
      "Private by design: you are compared with statistics released with differential privacy" +
        (found.release ? ` (ε = ${found.release.epsilon} for this release)` : "") +
        ", never with anyone's own figures, and groups too small to hide a person are not published. The figures carry noise, so each place is a range.");
    if (found.status !== "ready")
      return [el("p", {}, sentence(found.reason || "no comparison yet")), found.whatToDo ? el("p", {}, sentence(found.whatToDo)) : null, note];
    const items = found.groups.flatMap((group) => {
      const by = DIMENSIONS[group.dimension] || group.dimension;
      if (group.status !== "compared") return [el("li", { class: "muted" }, `By ${by}: ${sentence(group.reason)}`)];
      return group.metrics.map((metric) => comparisonItem(group, metric));
    });
    return [el("ul", { class: "comparison-list" }, ...items), note];
  });
}

function comparisonItem(group, metric) {
  const name = METRICS[metric.metric] || metric.metric;
  const parts = [];
  const improvement = metric.improvement;
  if (improvement?.verdict === "better") parts.push(el("p", {}, el("strong", {}, `Your ${name} improved`), ` since ${monthName(improvement.previousMonth, "long")}.`));
  else if (improvement?.verdict === "unchanged") parts.push(el("p", {}, `Your ${name} held steady since ${monthName(improvement.previousMonth, "long")}.`));
  else if (improvement?.verdict === "worse") parts.push(el("p", {}, `Your ${name} dipped since ${monthName(improvement.previousMonth, "long")}: small steps count.`));
  const rolledUp = group.group.rolledUpFrom
    ? ` (${group.group.rolledUpFrom.split(":")[1]} alone is too small a group to publish, so its wider area is used)`
    : "";
  const among = `Compared with about ${group.group.noisySize.toLocaleString("en-GB")} people in ${group.group.key}${rolledUp}.`;
  const by = DIMENSIONS[group.dimension] || group.dimension;
  // The summary says the place and its range in words (the API's, so every client says the same).
  parts.push(el("details", {}, el("summary", {}, `Where you stand by ${by}: ${name}`), el("p", {}, metric.summary), el("p", { class: "small muted" }, among)));
  return el("li", { class: "stack" }, ...parts);
}

// ---------------------------------------------------------------- privacy: consent, export, deletion

async function loadConsent() {
  await fill(document.getElementById("consent-body"), async () => {
    state.consent = (await api("/v1/me/consent")).scopes;
    return [
      el("p", {}, "You choose what Badges may use. Turning something off deletes what it allowed at once."),
      el("ul", { class: "consent-list", id: "consent-list" }, ...Object.keys(SCOPES).map(consentItem)),
    ];
  });
}

const AGE_RANGES = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"];
const SALARY_BRACKETS = ["<20k", "20-30k", "30-45k", "45-60k", "60-80k", "80-100k", "100k+"];

/** The demographics the `demographics` scope allows: each one optional, only coarse values. */
async function aboutYouForm() {
  const held = (await api("/v1/me/profile")).demographics || {};
  const choice = (id, label, values, current) => [
    el("label", { for: id }, label),
    el("select", { id, name: id }, el("option", { value: "" }, "Prefer not to say"),
      ...values.map((value) => el("option", { value, selected: value === current }, value))),
  ];
  const status = el("p", { role: "status", class: "small" }, state.aboutYouSaved);
  const form = el("form", { class: "stack", id: "about-you-form", "aria-labelledby": "about-you-title" },
    el("h4", { id: "about-you-title" }, "About you"),
    el("label", { for: "about-postcode" }, "Postcode district (the first half only, e.g. SW1A)"),
    el("input", { id: "about-postcode", name: "postcode", value: held.postcode || "", maxlength: "4", autocomplete: "off", pattern: "[A-Za-z]{1,2}[0-9][0-9A-Za-z]?" }),
    ...choice("about-age", "Age range", AGE_RANGES, held.ageRange),
    el("label", { for: "about-dependants" }, "Children or others who depend on you"),
    el("input", { id: "about-dependants", name: "dependants", type: "number", min: "0", max: "20", step: "1", value: held.dependants ?? "" }),
    ...choice("about-salary", "Yearly salary", SALARY_BRACKETS, held.salaryBracket),
    el("button", { type: "submit", class: "secondary" }, "Save"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (name) => form.elements[name].value.trim();
    const demographics = {
      postcode: value("about-postcode").toUpperCase() || null,
      ageRange: value("about-age") || null,
      dependants: value("about-dependants") === "" ? null : Number(value("about-dependants")),
      salaryBracket: value("about-salary") || null,
    };
    try {
      await api("/v1/me/profile", { method: "PUT", body: { demographics } });
      state.aboutYouSaved = "Saved: your peer groups follow at the next release.";
      status.textContent = state.aboutYouSaved;
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return form;
}

function consentItem(scope) {
  const about = SCOPES[scope];
  const grant = state.consent[scope];
  const active = grant?.status === "active";
  const status = active ? `On until ${day(grant.expiresAt)}` : grant?.status === "expired" ? "Expired" : "Off";
  const actions = el("div", { class: "row" });
  if (active) {
    actions.append(
      el("button", { type: "button", class: "secondary", onclick: () => changeConsent(scope, true) }, `Renew ${about.title}`),
      el("button", { type: "button", class: "danger", onclick: () => changeConsent(scope, false) }, `Turn off ${about.title}`),
    );
  } else {
    actions.append(el("button", { type: "button", onclick: () => changeConsent(scope, true) }, `Turn on ${about.title}`));
  }
  const item = el("li", { class: "stack consent", "data-scope": scope },
    el("h3", {}, about.title, " ", el("span", { class: `pill ${active ? "good" : ""}` }, status)),
    el("p", {}, about.what),
    el("p", { class: "small" }, el("strong", {}, "Turning it off deletes: "), about.deletes),
    el("p", { class: "muted small" }, `Each time you turn it on or renew it, it lasts ${about.days} days at most.`),
    actions);
  if (scope === "demographics" && active) {
    const slot = el("div", {});
    item.append(slot);
    fill(slot, aboutYouForm);
  }
  return item;
}

async function changeConsent(scope, on) {
  const about = SCOPES[scope];
  if (!on && !confirm(`Turn off "${about.title}"? This deletes ${about.deletes}`)) return;
  const expiresAt = new Date(Date.now() + (about.days - 1) * 86_400_000).toISOString();
  const change = on ? { purpose: about.what, expiresAt } : null;
  try {
    await api("/v1/me/consent", { method: "PUT", body: { scopes: { [scope]: change } } });
    announce(on ? `${about.title}: on.` : `${about.title}: off, and its data deleted.`, { tone: on ? "good" : "info" });
    await refreshAfterConsent();
  } catch (error) {
    announce(error.message, { tone: "bad" });
  }
}

/** `load`, run once for every call made while it waits its turn: insights come several at once. */
function coalesced(load) {
  let pending = null;
  return () =>
    (pending ??= new Promise((resolve) => setTimeout(resolve, 250)).then(load).finally(() => {
      pending = null;
    }));
}

const refreshMoney = coalesced(loadMoney);
const refreshAfterConsent = coalesced(async () => {
  await loadConsent();
  await Promise.all([loadMoney(), loadGoals(), loadComparisons()]);
});

function exportPanel() {
  const status = el("p", { role: "status", id: "export-status" });
  const button = el("button", { type: "button", class: "secondary" }, "Download my data");
  button.addEventListener("click", async () => {
    status.textContent = "Preparing your export…";
    try {
      let location = "/v1/me/export";
      for (;;) {
        const response = await api(location, { raw: true });
        if (response.status === 200) break;
        location = response.headers.get("Location") || location;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
      await download(location, "badges-export.json");
      status.textContent = "Your export has been downloaded.";
    } catch (error) {
      status.textContent = error.message;
    }
  });
  return el("div", { class: "stack" }, el("h3", {}, "Your data"),
    el("p", {}, "Everything we hold about you, as one JSON file."), button, status);
}

function deletePanel() {
  const confirmInput = el("input", { id: "delete-confirm", autocomplete: "off" });
  const error = el("p", { class: "form-error", role: "alert" });
  const form = el("form", { class: "stack danger-zone", id: "delete-form", "aria-labelledby": "delete-title" },
    el("h3", { id: "delete-title" }, "Delete your account"),
    el("p", {}, el("strong", {}, "This cannot be undone. "),
      "It removes your badges, rewards, goals, linked banks and every figure worked out from them, ends your workflows and destroys your encryption key, so no copy can be read again. This name can never be used again here."),
    el("label", { for: "delete-confirm" }, "Type DELETE to confirm"), confirmInput, error,
    el("button", { type: "submit", class: "danger" }, "Delete my account for good"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (confirmInput.value.trim() !== "DELETE") {
      error.textContent = "Type DELETE in capitals to confirm.";
      return;
    }
    try {
      const receipt = await api("/v1/me", { method: "DELETE" });
      const name = state.claims.sub;
      signOut();
      notice(`The account of ${name} has been deleted (reference ${receipt.reference}).`);
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  return form;
}

// ---------------------------------------------------------------- start

document.addEventListener("badges:signed-out", showSignIn);
document.getElementById("sign-out").addEventListener("click", () => signOut());

const existing = claims(token());
if (existing && (!existing.exp || existing.exp * 1000 > Date.now())) start(existing);
else showSignIn();
