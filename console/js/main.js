// The console shell: sign-in, navigation, language switch and a tiny hash router.
// Each page is a module under ./pages/ loaded when first opened; it exports
// render(el, params) and resolves once its data is on screen, when the shell marks
// the page element data-ready (what the browser test waits for).

import { api, token, setToken, clearToken, whenUnauthorized, ApiError } from "./api.js";
import { t, lang, setLang } from "./i18n.js";
import { h, mount, errorBox } from "./ui.js";

/** Routes: hash path → [nav label key, page module, shown in the navigation]. */
const ROUTES = {
  dashboard: ["navDashboard", () => import("./pages/dashboard.js"), true],
  cohort: ["navCohort", () => import("./pages/cohort.js"), true],
  funnel: ["navFunnel", () => import("./pages/funnel.js"), true],
  ltv: ["navLtv", () => import("./pages/ltv.js"), true],
  profiles: ["navProfiles", () => import("./pages/profiles.js"), true],
  profile: ["navProfiles", () => import("./pages/profile.js"), false],
  segments: ["navSegments", () => import("./pages/segments.js"), true],
  tags: ["navTags", () => import("./pages/tags.js"), true],
  journeys: ["navJourneys", () => import("./pages/journeys.js"), true],
  promotions: ["navPromotions", () => import("./pages/promotions.js"), true],
  campaigns: ["navCampaigns", () => import("./pages/campaigns.js"), true],
  reviews: ["navReviews", () => import("./pages/reviews.js"), true],
};

const app = document.getElementById("app");
let renderSeq = 0;

/** The current route: {name, arg} from "#/name/arg?query". */
function currentRoute() {
  const path = (location.hash.replace(/^#\/?/, "").split("?")[0] || "dashboard").split("/");
  const name = ROUTES[path[0]] ? path[0] : "dashboard";
  return { name, arg: path.slice(1).map(decodeURIComponent).join("/") };
}

function langSwitch() {
  const select = h(
    "select",
    { class: "lang", "aria-label": t("language"), onchange: (e) => { setLang(e.target.value); render(); } },
    h("option", { value: "zh", selected: lang() === "zh" }, "中文"),
    h("option", { value: "en", selected: lang() === "en" }, "English"),
  );
  return select;
}

function signInPage(message) {
  const input = h("input", { type: "password", id: "token", autocomplete: "current-password", placeholder: "adm_…", required: true });
  const remember = h("input", { type: "checkbox", id: "remember", checked: true });
  const status = h("div", { class: "signin-status" }, message ? h("div", { class: "error", role: "alert" }, message) : null);
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (e) => {
        e.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        mount(status, t("loading"));
        try {
          // Any admin call checks the token; this one is the cheapest.
          await api("/profiles?limit=1", { tokenOverride: value });
          setToken(value, remember.checked);
          render();
        } catch (err) {
          mount(
            status,
            err instanceof ApiError && (err.status === 401 || err.status === 403)
              ? h("div", { class: "error", role: "alert" }, t("badToken"))
              : errorBox(err),
          );
        }
      },
    },
    h("h1", {}, t("signInTitle")),
    h("label", { for: "token" }, t("token")),
    input,
    h("label", { class: "check" }, remember, " ", t("remember")),
    h("button", { type: "submit", class: "primary" }, t("signIn")),
    status,
    h("p", { class: "hint" }, t("signInHelp")),
  );
  mount(app, h("div", { class: "signin-wrap" }, h("div", { class: "signin-top" }, h("strong", {}, "Flywheel"), langSwitch()), form));
  input.focus();
}

function shell(route) {
  const nav = h(
    "nav",
    {},
    Object.entries(ROUTES)
      .filter(([, r]) => r[2])
      .map(([name, [label]]) =>
        h(
          "a",
          {
            href: `#/${name}`,
            class: name === route.name || (route.name === "profile" && name === "profiles") ? "active" : "",
            "data-nav": name,
          },
          t(label),
        ),
      ),
  );
  const page = h("main", { id: "page", "data-page": route.name });
  mount(
    app,
    h(
      "header",
      {},
      h("a", { class: "brand", href: "#/dashboard" }, "Flywheel"),
      nav,
      h(
        "div",
        { class: "tools" },
        langSwitch(),
        h("button", { class: "ghost signout", onclick: () => { clearToken(); location.hash = "#/dashboard"; render(); } }, t("signOut")),
      ),
    ),
    page,
  );
  return page;
}

/** Renders the current route (or the sign-in page without a token). */
async function render() {
  const seq = ++renderSeq;
  document.title = t("appName");
  if (!token()) return signInPage();
  const route = currentRoute();
  const page = shell(route);
  const started = performance.now();
  mount(page, h("p", { class: "loading" }, t("loading")));
  try {
    const mod = await ROUTES[route.name][1]();
    if (seq !== renderSeq) return;
    const holder = h("div", { class: "page-body" });
    await mod.render(holder, route.arg);
    if (seq !== renderSeq) return;
    mount(page, holder);
  } catch (err) {
    if (seq !== renderSeq) return;
    if (err instanceof ApiError && err.status === 401) return;
    mount(page, errorBox(err));
  }
  page.dataset.ready = "1";
  page.dataset.ms = String(Math.round(performance.now() - started));
}

whenUnauthorized(() => {
  clearToken();
  signInPage(t("badToken"));
});

setLang(lang());
window.addEventListener("hashchange", () => {
  // A page's own query changes (setHashParams) do not re-render; a new route does.
  render();
});
render();
