// The two financial calculators that run in the page. Each use is reported as a `tool_usage`
// event with its `calculatorId`, so the real-time badges (Calculator explorer, Calculator
// collector) count what the member really does here.
import { api, el, money } from "/pages/common/api.js";

/** Monthly saving needed to reach `target` from `saved` in `months` (all in minor units). */
export function savingsPlan(targetMinor, savedMinor, months) {
  const left = Math.max(targetMinor - savedMinor, 0);
  return { leftMinor: left, perMonthMinor: months > 0 ? Math.ceil(left / months) : left };
}

/** What a month's income leaves after needs and wants, against the 50/30/20 rule of thumb. */
export function budgetPlan(incomeMinor, needsMinor, wantsMinor) {
  const left = incomeMinor - needsMinor - wantsMinor;
  const share = (part) => (incomeMinor > 0 ? part / incomeMinor : 0);
  return {
    leftMinor: left,
    needsShare: share(needsMinor),
    wantsShare: share(wantsMinor),
    savingShare: share(Math.max(left, 0)),
  };
}

function newEventId() {
  return globalThis.crypto?.randomUUID
    ? crypto.randomUUID()
    : `calc-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

async function reportUse(userId, calculatorId) {
  const event = {
    id: newEventId(),
    type: "tool_usage",
    userId,
    eventData: { calculatorId },
    timestamp: new Date().toISOString(),
  };
  return api("/v1/events", { method: "POST", body: event });
}

function field(id, label, attributes = {}) {
  return [
    el("label", { for: id }, label),
    el("input", { id, name: id, type: "number", inputmode: "decimal", min: "0", step: "0.01", required: true, ...attributes }),
  ];
}

const pounds = (form, name) => Math.round(Number(form.elements[name].value || 0) * 100);

function calculator({ id, title, intro, fields, compute, userId }) {
  const result = el("p", { class: "calc-result", id: `${id}-result`, role: "status", "aria-live": "polite" });
  const counted = el("p", { class: "muted small", id: `${id}-counted` });
  const form = el(
    "form",
    { class: "stack", id: `${id}-form`, "aria-labelledby": `${id}-title`, "data-calculator-id": id },
    el("h3", { id: `${id}-title` }, title),
    el("p", { class: "muted" }, intro),
    ...fields,
    el("button", { type: "submit" }, "Calculate"),
    result,
    counted,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = compute(form);
    try {
      const outcome = await reportUse(userId, id);
      counted.textContent =
        outcome.status === "accepted" ? "Counted towards your calculator badges." : "Already counted.";
    } catch (error) {
      counted.textContent = `Not counted this time: ${error.message}`;
    }
  });
  return form;
}

/** Both calculators, reporting uses as the member `userId` (the token's subject). */
export function calculators(userId, currency) {
  const show = (minor) => money(minor, currency);
  return [
    calculator({
      id: "savings-goal",
      userId,
      title: "Savings goal calculator",
      intro: "How much to put aside each month to reach a goal.",
      fields: [
        ...field("savings-goal-target", "Goal amount"),
        ...field("savings-goal-saved", "Already saved", { value: "0" }),
        ...field("savings-goal-months", "Months to get there", { step: "1", min: "1", value: "12" }),
      ],
      compute: (form) => {
        const months = Number(form.elements["savings-goal-months"].value);
        const plan = savingsPlan(pounds(form, "savings-goal-target"), pounds(form, "savings-goal-saved"), months);
        if (plan.leftMinor === 0) return "You are already there: well done!";
        return `Put aside ${show(plan.perMonthMinor)} a month for ${months} months to save the ${show(plan.leftMinor)} still to go.`;
      },
    }),
    calculator({
      id: "budget",
      userId,
      title: "Budget calculator",
      intro: "Split a month's income into needs, wants and saving (a common guide is 50 / 30 / 20).",
      fields: [
        ...field("budget-income", "Monthly income after tax"),
        ...field("budget-needs", "Needs: rent, bills, food, transport"),
        ...field("budget-wants", "Wants: eating out, shopping, fun"),
      ],
      compute: (form) => {
        const plan = budgetPlan(pounds(form, "budget-income"), pounds(form, "budget-needs"), pounds(form, "budget-wants"));
        const pct = (share) => `${Math.round(share * 100)} %`;
        if (plan.leftMinor < 0)
          return `This month's plan is ${show(-plan.leftMinor)} over: trimming wants a little would balance it.`;
        return `Needs ${pct(plan.needsShare)}, wants ${pct(plan.wantsShare)}: that leaves ${show(plan.leftMinor)} (${pct(plan.savingShare)}) to save.`;
      },
    }),
  ];
}
