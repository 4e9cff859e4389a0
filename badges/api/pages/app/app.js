// The member dashboard (/app): sign-in, then every section, kept current by the live stream.
import { api, claims, el, mountSignIn, openStream, signOut, token } from "/pages/common/api.js";

const state = { claims: null, stream: null };

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

async function start(signed) {
  state.claims = signed;
  document.getElementById("sign-in").hidden = true;
  document.getElementById("account").hidden = false;
  document.getElementById("section-nav").hidden = false;
  document.getElementById("who").textContent = `Signed in as ${signed.sub}`;
  const dashboard = document.getElementById("dashboard");
  dashboard.hidden = false;
  dashboard.replaceChildren(el("section", { id: "badges", class: "card" }, el("h2", {}, "Your badges")));
  await api("/v1/me");
  state.stream = openStream({
    onMessage: () => {},
    onState: (stream) => {
      const badge = document.getElementById("stream-state");
      badge.textContent = stream === "live" ? "Live" : stream === "reconnecting" ? "Reconnecting…" : "Signed out";
      badge.className = `status-dot who ${stream === "live" ? "live" : "off"}`;
      if (stream === "signed-out") signOut();
    },
  });
}

document.addEventListener("badges:signed-out", showSignIn);
document.getElementById("sign-out").addEventListener("click", () => signOut());

const existing = claims(token());
if (existing && (!existing.exp || existing.exp * 1000 > Date.now())) start(existing);
else showSignIn();
