// Browser test of the web console: starts the real binary on a generated demo shop,
// drives Debian's Chromium through playwright-core, and checks every page shows real
// data, the segment builder's live count equals the API's, the stored weekly and monthly
// reviews are listed and shown (KPIs, benchmarks), sign-in (right and wrong
// token), sign-out and the language switch work, nothing logs an error or fails to
// load, and each page is on screen within the budget. Saves a screenshot per page.
//
// Environment:
//   FLYWHEEL_BIN            the flywheel binary (required unless FLYWHEEL_BROWSER_URL is set)
//   FLYWHEEL_BROWSER_USERS  demo size (default 2000)
//   FLYWHEEL_BROWSER_URL    use this running server instead (with FLYWHEEL_BROWSER_TOKEN)
//   FLYWHEEL_BROWSER_OUT    screenshot directory (default <repo>/target/browser-screenshots)
//   FLYWHEEL_BROWSER_BUDGET_MS  page-load budget (default 1000)
//   CHROMIUM                browser executable (default /usr/bin/chromium)

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const OUT = resolve(process.env.FLYWHEEL_BROWSER_OUT || join(repo, "target", "browser-screenshots"));
const BUDGET = Number(process.env.FLYWHEEL_BROWSER_BUDGET_MS || 1000);
const USERS = process.env.FLYWHEEL_BROWSER_USERS || "2000";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TOKEN = process.env.FLYWHEEL_BROWSER_TOKEN || `adm_browser_${process.pid}_${Date.now()}`;

const failures = [];
const timings = [];
function fail(msg) {
  failures.push(msg);
  console.error(`FAIL ${msg}`);
}
function check(cond, msg) {
  if (!cond) fail(msg);
  return cond;
}

// ---------------------------------------------------------------- the server

/** Starts `flywheel demo`; resolves to {base, stop} once the shop is ingested. */
async function startDemo() {
  const bin = process.env.FLYWHEEL_BIN;
  if (!bin || !existsSync(bin)) throw new Error(`FLYWHEEL_BIN must name the flywheel binary (got ${bin})`);
  const dir = mkdtempSync(join(tmpdir(), "flywheel-browser-"));
  const args = ["--data-dir", dir, "demo", "--users", USERS, "--listen", "127.0.0.1:0", "--admin-token", TOKEN];
  const child = spawn(bin, args, {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
    // Only our flags: no FLYWHEEL_* setting of the caller's (store, listen, config…) leaks in.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("FLYWHEEL_"))), FLYWHEEL_LOG: "warn" },
  });
  let base = null;
  let log = "";
  const ready = new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`demo not ready after 10 min:\n${log.slice(-3000)}`)), 600_000);
    const onData = (chunk) => {
      const text = chunk.toString();
      log += text;
      const m = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) base = m[1];
      // The demo prints its "try:" hint (the console URL) once the shop is ingested.
      if (base && /try: .*\/console\//.test(log)) {
        clearTimeout(timer);
        res();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`flywheel demo exited (${code}):\n${log.slice(-3000)}`));
    });
  });
  await ready;
  child.removeAllListeners("exit");
  const stop = async () => {
    child.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        r();
      }, 10_000);
      child.on("exit", () => {
        clearTimeout(t);
        r();
      });
    });
    rmSync(dir, { recursive: true, force: true });
  };
  return { base, stop };
}

// ---------------------------------------------------------------- the browser

const LAUNCH_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Responses with these (status, path prefix) are expected while `expecting` names a step. */
let expecting = null;
const EXPECTED = {
  wrongToken: [401, "/api/v1/profiles"],
  badExpression: [400, "/api/v1/segments/count"],
};

function watch(page, base) {
  const expected = (status, url) => {
    const e = expecting && EXPECTED[expecting];
    return e && status === e[0] && new URL(url).pathname.startsWith(e[1]);
  };
  let lastExpected = 0;
  page.on("response", (r) => {
    if (r.status() < 400) return;
    if (expected(r.status(), r.url())) {
      lastExpected = Date.now();
      return;
    }
    fail(`HTTP ${r.status()} ${r.request().method()} ${r.url().replace(base, "")}`);
  });
  page.on("requestfailed", (r) => {
    // A live-count request aborted by a newer keystroke is the builder working as meant.
    if (r.failure()?.errorText === "net::ERR_ABORTED" && r.url().includes("/api/v1/segments/count")) return;
    fail(`request failed: ${r.method()} ${r.url().replace(base, "")}: ${r.failure()?.errorText}`);
  });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Chrome logs every expected 4xx as "Failed to load resource"; those are checked above.
    if (/Failed to load resource: the server responded with a status of (400|401)/.test(m.text()) && expecting) return;
    if (/Failed to load resource/.test(m.text()) && Date.now() - lastExpected < 2000) return;
    fail(`console error: ${m.text()}`);
  });
}

/** Loads `#/route` from scratch and waits for the page to be on screen; returns the ms taken. */
async function load(page, base, route, name, contentSelector) {
  await page.goto("about:blank");
  const t0 = Date.now();
  await page.goto(`${base}/console/#/${route}`);
  try {
    // Polled every 10 ms: waitForSelector backs off to 500 ms between checks, which would
    // add up to half a second to a page that takes more than a few hundred ms.
    await page.waitForFunction(() => !!document.querySelector("#page[data-ready]"), null, { polling: 10, timeout: 15_000 });
    await page.waitForFunction(
      (sel) => {
        const el = document.querySelector(`#page[data-ready] ${sel}`);
        return !!el && el.getClientRects().length > 0;
      },
      contentSelector,
      { polling: 10, timeout: 2_000 },
    );
  } catch {
    fail(`${name}: content ${contentSelector} not shown`);
  }
  return Date.now() - t0;
}

/**
 * Opens a page and checks it against the budget. A load over budget is timed once more
 * (another process on the machine can stall one load); both times are reported.
 */
async function open(page, base, route, name, contentSelector) {
  let ms = await load(page, base, route, name, contentSelector);
  let label = `${ms}`;
  if (ms > BUDGET) {
    const again = await load(page, base, route, name, contentSelector);
    label = `${ms}, again ${again}`;
    ms = again;
  }
  timings.push([name, label]);
  check(ms <= BUDGET, `${name}: loaded in ${label} ms (budget ${BUDGET} ms)`);
  const err = await page.$("#page .error");
  if (err) fail(`${name}: shows an error: ${await err.innerText()}`);
  return ms;
}

async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header stays on top of the shot
  await page.waitForTimeout(150); // let uPlot draw
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

/** Calls the admin API from the page (same origin, the stored token). */
function apiFromPage(page, path, body) {
  return page.evaluate(
    async ([path, body, token]) => {
      const r = await fetch(`/api/v1${path}`, {
        method: body ? "POST" : "GET",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: r.status, json: await r.json() };
    },
    [path, body, TOKEN],
  );
}

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

// ---------------------------------------------------------------- the test

async function run(base) {
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "zh-TW" });
    const page = await context.newPage();
    watch(page, base);

    // Sign-in: / redirects to the console, Chinese by default; a wrong token is refused.
    await page.goto(`${base}/`);
    check(page.url() === `${base}/console/`, `/ redirects to /console/ (got ${page.url()})`);
    await page.waitForSelector("form.signin #token");
    check((await page.getAttribute("html", "lang")) === "zh-Hant", "Chinese by default");
    check((await page.innerText("form.signin button[type=submit]")) === "登入", "sign-in button in Chinese");
    expecting = "wrongToken";
    await page.fill("#token", "adm_wrong_token");
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector("form.signin .error", { timeout: 5000 }).catch(() => fail("wrong token: no error shown"));
    check((await page.innerText("form.signin")).includes("令牌無效"), "wrong token: the error says the token is not valid");
    await shot(page, "00-signin-wrong-token");
    await page.waitForTimeout(300);
    expecting = null;
    await page.fill("#token", TOKEN);
    await page.click("form.signin button[type=submit]");
    await page.waitForSelector("#page[data-ready]", { timeout: 15_000 });
    check(await page.evaluate(() => !!localStorage.getItem("flywheel.token")), "token remembered in localStorage");

    // 1. Dashboard: eight KPI cards with values, three trend charts.
    await open(page, base, "dashboard", "dashboard", ".cards .kpi");
    await page.waitForSelector("#page .uplot canvas", { timeout: 5000 }).catch(() => fail("dashboard: no chart drawn"));
    const kpis = await page.$$eval("#page .cards:not(.small) .kpi", (els) =>
      els.map((e) => [e.dataset.kpi, e.querySelector(".kpi-value").textContent.trim()]),
    );
    check(kpis.length === 8, `dashboard: 8 KPI cards (got ${kpis.length})`);
    for (const [k, v] of kpis) check(v && v !== "—", `dashboard: KPI ${k} has a value (got ${JSON.stringify(v)})`);
    const gmv = kpis.find(([k]) => k === "gmv");
    check(gmv && /[1-9]/.test(gmv[1]), `dashboard: GMV is not zero (${gmv && gmv[1]})`);
    check((await page.$$("#page .uplot")).length >= 3, "dashboard: three trend charts");
    await shot(page, "01-dashboard");
    // The date-range picker: the last 7 days reload the KPIs for that period.
    await page.click('#page .range button:has-text("近 7 天")');
    await page
      .waitForFunction(() => /from=/.test(location.hash) && !document.querySelector("#page .busy") && document.querySelectorAll("#page .kpi").length >= 8, null, { timeout: 5000 })
      .catch(() => fail("dashboard: the 7-day range does not reload"));
    const from7 = await page.evaluate(() => new URLSearchParams(location.hash.split("?")[1]).get("from"));
    const want7 = await page.evaluate(() => {
      const d = new Date();
      d.setDate(d.getDate() - 6);
      return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
    });
    check(from7 === want7, `dashboard: 7-day range starts ${want7} (got ${from7})`);
    check((await page.inputValue("#page input.date-from")) === want7, "dashboard: the date input shows the new start");

    // 2. Cohort heatmap: cells with rates.
    await open(page, base, "cohort", "cohort", "table.heatmap");
    const cells = await texts(page, "#page table.heatmap td.cell");
    check(cells.length > 0, "cohort: heatmap has cells");
    check(cells.some((c) => /%$/.test(c) && parseFloat(c) > 0), "cohort: some retention above 0 %");
    await shot(page, "02-cohort");

    // 3. Funnel: four bars, the first with users.
    await open(page, base, "funnel", "funnel", "svg.funnel");
    const bars = await page.$$("#page svg.funnel rect.funnel-bar");
    check(bars.length === 4, `funnel: 4 bars (got ${bars.length})`);
    const first = (await texts(page, "#page svg.funnel .funnel-value"))[0] || "";
    check(/[1-9]/.test(first.split("·")[0]), `funnel: first step has users (${first})`);
    await shot(page, "03-funnel");
    await open(page, base, "funnel?breakdown=gender", "funnel by gender", "svg.funnel");
    const split = await page.$$("#page section.panel:last-of-type table.grid tbody tr:not(:has(td.empty))");
    check(split.length >= 2, `funnel: breakdown by gender has rows (got ${split.length})`);
    await shot(page, "03-funnel-breakdown");
    await open(page, base, "funnel?breakdown=properties.category", "funnel by category", "svg.funnel");
    const byCategory = await page.$$eval("#page section.panel:last-of-type table.grid tbody tr:not(:has(td.empty))", (rs) => rs.map((r) => r.cells[0].textContent.trim()));
    check(byCategory.length >= 2 && byCategory.some((v) => v !== "—"), `funnel: breakdown by the viewed product's category has values (${JSON.stringify(byCategory)})`);

    // 3b. Customer value: LTV cohorts (table and bars), churn-risk bands, top customers, the segment hint.
    await open(page, base, "ltv", "customer value", "table.grid tr.cohort-row");
    const cohortRows = await page.$$eval("#page tr.cohort-row", (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim())));
    check(cohortRows.length >= 6, `customer value: a year of first-order months (got ${cohortRows.length})`);
    check(cohortRows.every((r) => /^\d{4}-\d{2}$/.test(r[0]) && /[1-9]/.test(r[1]) && /^¥[\d,]+\.\d{2}$/.test(r[3])), `customer value: month, users, ¥ LTV per row (${JSON.stringify(cohortRows[0])})`);
    check((await page.$$("#page svg.ltv-bars rect.bar-rect")).length === cohortRows.length, "customer value: one LTV bar per month");
    const ltvApi = await apiFromPage(page, `/analytics/ltv?${await page.evaluate(() => location.hash.split("?")[1] || "")}`);
    check(ltvApi.json.cohorts?.length === cohortRows.length, `customer value: every cohort of the API shown (${ltvApi.json.cohorts?.length})`);
    check(ltvApi.status === 200 && !ltvApi.json.clv?.error, `customer value: the demo's CLV fits (${JSON.stringify(ltvApi.json.clv?.error)})`);
    const bandBars = await page.$$eval("#page svg.band-bars g.bar", (gs) => gs.map((g) => g.querySelector(".bar-value").textContent.trim()));
    check(bandBars.length === 3, `customer value: three churn-risk bands (got ${bandBars.length})`);
    const bandSum = bandBars.reduce((a, v) => a + Number(v.replace(/[^\d]/g, "")), 0);
    check(bandSum > 0 && bandSum === ltvApi.json.clv?.customers, `customer value: bands add up to the customers (${bandSum} vs ${ltvApi.json.clv?.customers})`);
    const topLinks = await page.$$eval("#page tr.top-row a[href^='#/profile/']", (as) => as.map((a) => a.textContent.trim()));
    check(topLinks.length >= 5, `customer value: top customers listed with profile links (got ${topLinks.length})`);
    const topShown = ltvApi.json.clv?.top?.[0]?.user_id ?? ltvApi.json.clv?.top?.[0]?.anonymous_id;
    check(topLinks[0] === topShown, `customer value: the first top customer is the API's, by user id else anonymous id (${topLinks[0]})`);
    check((await texts(page, "#page tr.top-row td.num")).some((x) => /^¥[\d,]+\.\d{2}$/.test(x)), "customer value: CLV shown in ¥ with two decimals");
    await shot(page, "03b-customer-value");
    // The segment hint opens the builder prefilled with the high-risk expression, counted live.
    await page.click("#page a.seg-link");
    await page.waitForSelector('#page[data-page="segments"][data-ready] .live-count .value', { timeout: 5000 }).catch(() => fail("customer value: the segment link does not open the builder"));
    const prefilled = await page.inputValue("#page textarea.expression").catch(() => "");
    check(prefilled === 'traits.clv_churn_risk == "high"', `customer value: the builder is prefilled (${prefilled})`);
    // A top customer opens the profile page.
    await open(page, base, "ltv", "customer value", "tr.top-row a");
    await page.click("#page tr.top-row a");
    await page.waitForSelector('#page[data-page="profile"][data-ready] .timeline', { timeout: 5000 }).catch(() => fail("customer value: a top customer does not open its profile"));
    // A CLV that cannot be fitted (no customer touched by an unknown campaign) is a message, not a crash.
    await open(page, base, "ltv?campaign=no_such_campaign", "customer value (no CLV)", ".clv-error");
    check(/CLV/.test(await page.innerText("#page .clv-error").catch(() => "")), "customer value: the CLV error is shown");
    await shot(page, "03c-customer-value-no-clv");

    // 4. Profiles: the list; find a buyer by id; the profile page with timeline and orders.
    await open(page, base, "profiles", "profiles", "table.grid tbody tr");
    check((await page.$$("#page table.grid tbody tr td a")).length > 0, "profiles: the list has profiles");
    await shot(page, "04-profiles");
    const buyer = await apiFromPage(page, "/segments/preview", { expression: "orders(all) >= 2", limit: 1 });
    const userId = buyer.json.members?.[0]?.user_id;
    check(!!userId, "a demo buyer with two orders exists");
    await page.fill("#page input.search-id", userId);
    await page.press("#page input.search-id", "Enter");
    await page.waitForSelector('#page[data-page="profile"][data-ready] .timeline li.event', { timeout: 5000 }).catch(() =>
      fail("profiles: searching an id does not open its profile"),
    );
    await open(page, base, `profile/${encodeURIComponent(userId)}`, "profile", ".timeline li.event");
    check((await page.$$("#page .timeline li.event")).length >= 5, "profile: timeline has events");
    check((await page.$$("#page .tags .chip")).length > 0, "profile: tags shown");
    check((await page.innerText("#page")).includes(userId), "profile: shows the user id");
    const orderRows = await page.$$eval("#page .panel", (ps) => {
      const p = ps.find((x) => /訂單/.test(x.querySelector("h2")?.textContent || ""));
      return p ? p.querySelectorAll("tbody tr:not(:has(td.empty))").length : 0;
    });
    check(orderRows >= 2, `profile: orders listed (got ${orderRows})`);
    await page.click("#page .timeline + button").catch(() => {});
    await shot(page, "05-profile");

    // 5. Segment builder: live count equals the API's; an error is shown inline; save.
    await open(page, base, "segments", "segments", ".live-count .value");
    const expression = 'gender = "女" and orders(365d) >= 1';
    expecting = "badExpression";
    await page.fill("#page textarea.expression", "gender = ");
    await page.waitForSelector("#page .live-count .error", { timeout: 5000 }).catch(() => fail("segments: a bad expression shows no error"));
    await page.waitForTimeout(300);
    expecting = null;
    await page.fill("#page textarea.expression", expression);
    await page.waitForFunction(
      () => document.querySelector("#page .live-count .value") && !document.querySelector("#page .live-count.busy"),
      null,
      { timeout: 5000 },
    );
    const shown = Number(await page.getAttribute("#page .live-count .value", "data-count"));
    const counted = await apiFromPage(page, "/segments/count", { expression });
    check(counted.status === 200, `segments: API count answers 200 (${counted.status})`);
    check(shown === counted.json.count, `segments: live count ${shown} equals the API's ${counted.json.count}`);
    check(shown > 0, "segments: the count is not zero");
    const segName = `browser_${Date.now()}`;
    await page.fill("#page input.seg-name", segName);
    await page.click("#page .save-form button[type=submit]");
    await page.waitForSelector(`#page td:text-is("${segName}")`, { timeout: 5000 }).catch(() => fail("segments: saved segment not listed"));
    await shot(page, "06-segments");

    // 6. Tags: groups with member counts; a tag's members.
    await open(page, base, "tags", "tags", ".members table.grid");
    check((await page.$$("#page .tag-link")).length > 5, "tags: tags listed");
    check((await page.$$("#page .members tbody a")).length > 0, "tags: members of a tag listed");
    await shot(page, "07-tags");

    // 7. Journeys: the seed journeys with status and steps.
    await open(page, base, "journeys", "journeys", "section.journey");
    check((await page.$$("#page section.journey")).length >= 1, "journeys: journeys listed");
    check((await page.$$("#page section.journey tbody tr")).length >= 1, "journeys: per-step rows");
    // Uplift of a journey over its holdout: the demo's journeys are drafts with no runs, so n/a.
    const upliftJourney = await page.getAttribute("#page section.journey .uplift", "data-journey");
    await page.click("#page section.journey .uplift button.uplift-show");
    await page.waitForSelector("#page section.journey .uplift[data-ready] .uplift-value", { timeout: 5000 }).catch(() => fail("journeys: uplift not shown"));
    const upliftApi = await apiFromPage(page, `/analytics/uplift?journey=${encodeURIComponent(upliftJourney)}`);
    const upliftShown = await page.innerText("#page section.journey .uplift[data-ready] .uplift-value").catch(() => "");
    const wantUplift = upliftApi.json.uplift == null ? "n/a" : "個百分點";
    check(upliftShown.includes(wantUplift), `journeys: uplift of ${upliftJourney} shows ${wantUplift} (${upliftShown}; API ${JSON.stringify(upliftApi.json)})`);
    check((await page.$$("#page section.journey .uplift[data-ready] tbody tr")).length === 2, "journeys: uplift shows the treated and holdout arms");
    check(!(await page.$("#page .uplift .error")), "journeys: uplift without an error");
    await page.evaluate(() => document.querySelector("#page section.journey .uplift[data-ready]").scrollIntoView());
    await shot(page, "08-journeys");

    // 8. Promotions: coupon templates (the demo's seeds), a flash sale and a group deal made here.
    const now = Date.now();
    const sale = await apiFromPage(page, "/flash-sales", {
      id: `fs_${now}`,
      product: "P0001",
      price: 9900,
      stock: 50,
      starts_at: new Date(now - 3600_000).toISOString(),
      ends_at: new Date(now + 86400_000).toISOString(),
    });
    check(sale.status < 300, `flash sale created (${sale.status} ${JSON.stringify(sale.json)})`);
    const deal = await apiFromPage(page, "/group-deals", { id: `gd_${now}`, product: "P0002", group_price: 5900, group_size: 3, join_hours: 24 });
    check(deal.status < 300, `group deal created (${deal.status} ${JSON.stringify(deal.json)})`);
    await open(page, base, "promotions", "promotions", "section.panel table.grid");
    check((await page.$$("#page section.panel")).length === 3, "promotions: three tables");
    const listed = await page.$$eval("#page section.panel", (ps) => ps.map((p) => p.querySelectorAll("tbody tr td code").length));
    check(listed.length === 3 && listed.every((n) => n > 0), `promotions: templates, flash sales and group deals listed (${listed})`);
    await shot(page, "09-promotions");

    // 9. Campaign ROI, channels with budget suggestion, goals, alerts.
    await open(page, base, "campaigns", "campaigns", "section.panel table.grid");
    check((await page.$$("#page section.panel table.grid")).length === 5, "campaigns: five tables");
    const filled = await page.$$eval("#page section.panel table.grid", (ts) => ts.map((t) => t.querySelectorAll("tbody tr:not(:has(td.empty))").length));
    check(filled[0] > 0 && filled[1] > 0 && filled[2] > 0 && filled[3] > 0, `campaigns: campaign, channel, attribution and goal rows (${filled})`);
    // Attribution: the server's default model and window, then first touch, then a wider window.
    const attrRows = () =>
      page.$$eval("#page section.attribution tbody tr:not(:has(td.empty))", (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim())));
    const defaults = await apiFromPage(page, "/analytics/attribution");
    check((await page.getAttribute("#page section.attribution", "data-model")) === defaults.json.model, `attribution: the server's default model (${defaults.json.model})`);
    check((await page.inputValue("#page section.attribution input.window-days")) === String(defaults.json.window_days), "attribution: the server's default window");
    check((await page.innerText("#page section.attribution .toggle button.on")) === (defaults.json.model === "first" ? "首次觸點" : "最後觸點"), "attribution: the model toggle shows the default");
    const other = defaults.json.model === "first" ? "last" : "first";
    const settled = (model, win) =>
      page
        .waitForFunction(
          ([m, w]) => {
            const p = document.querySelector("#page section.attribution");
            return p && p.dataset.model === m && p.dataset.window === w && !p.classList.contains("busy");
          },
          [model, String(win)],
          { timeout: 5000 },
        )
        .then(() => true, () => false);
    const attrApi = async (model, win) => {
      const range = await page.evaluate(() => Object.fromEntries(new URLSearchParams(location.hash.split("?")[1])));
      const r = await apiFromPage(page, `/analytics/attribution?model=${model}&window_days=${win}&from=${range.from}&to=${range.to}`);
      return r.json.rows.map((x) => [x.campaign, x.channel, String(x.orders)]);
    };
    // Counts are shown with thousands separators (1,234).
    const sameRows = (shown, want) =>
      JSON.stringify(shown.map((r) => [r[0], r[1], r[2].replace(/,/g, "")])) === JSON.stringify(want);
    check(sameRows(await attrRows(), await attrApi(defaults.json.model, defaults.json.window_days)), "attribution: default rows equal the API's");
    await page.click(`#page section.attribution .toggle button[data-model=${other}]`);
    check(await settled(other, defaults.json.window_days), `attribution: switching to ${other} touch reloads`);
    check(sameRows(await attrRows(), await attrApi(other, defaults.json.window_days)), `attribution: ${other}-touch rows equal the API's`);
    check(new URLSearchParams((await page.evaluate(() => location.hash)).split("?")[1]).get("model") === other, "attribution: the model is kept in the address");
    await page.fill("#page section.attribution input.window-days", "30");
    await page.dispatchEvent("#page section.attribution input.window-days", "change");
    check(await settled(other, 30), "attribution: a 30-day window reloads");
    const rows30 = await attrRows();
    check(rows30.length > 0 && sameRows(rows30, await attrApi(other, 30)), `attribution: 30-day rows equal the API's (${rows30.length})`);
    check(rows30.every((r) => /^¥[\d,]+\.\d{2}$/.test(r[3])), "attribution: revenue in ¥ with two decimals");
    await page.click(`#page section.attribution .toggle button[data-model=${defaults.json.model}]`);
    check(await settled(defaults.json.model, 30), "attribution: switching back reloads");
    await shot(page, "10-campaigns");

    // 10. Reviews (復盤): the demo's 4 weekly and 3 monthly reviews listed; the newest one
    // opens with the KPIs against the period before, the benchmark checks and the
    // campaign tables; the cadence filter; another stored one; the current month live.
    await open(page, base, "reviews", "reviews", ".review-detail[data-ready] tr.kpi-change");
    const stored = await apiFromPage(page, "/analytics/reviews");
    const listedIds = await page.$$eval("#page .review-list tr.review-row", (rs) => rs.map((r) => Number(r.dataset.id)));
    check(listedIds.length === 7, `reviews: 7 stored reviews listed (got ${listedIds.length})`);
    check(JSON.stringify(listedIds) === JSON.stringify((stored.json.reviews || []).map((r) => r.id)), `reviews: the list is the API's, newest period first (${listedIds})`);
    const cadenceRows = async () => page.$$eval("#page .review-list tr.review-row", (rs) => rs.length);
    await page.click("#page .cadence-filter button[data-cadence=weekly]");
    check((await cadenceRows()) === 4, `reviews: 4 weekly (got ${await cadenceRows()})`);
    await page.click("#page .cadence-filter button[data-cadence=monthly]");
    check((await cadenceRows()) === 3, `reviews: 3 monthly (got ${await cadenceRows()})`);
    check(new URLSearchParams((await page.evaluate(() => location.hash)).split("?")[1]).get("cadence") === "monthly", "reviews: the filter is kept in the address");
    await page.click("#page .cadence-filter button[data-cadence=all]");
    check((await page.getAttribute("#page .review-list tr.selected", "data-id")) === String(listedIds[0]), "reviews: the newest review is selected");
    const reviewShown = async (id) => {
      const one = await apiFromPage(page, `/analytics/reviews/${id}`);
      const r = one.json.review;
      const kpiRows = await page.$$eval("#page .review-detail tr.kpi-change", (rs) =>
        rs.map((x) => [x.dataset.metric, ...[...x.cells].slice(1).map((c) => c.textContent.trim())]),
      );
      check(kpiRows.length === 11, `reviews #${id}: 11 KPI rows (got ${kpiRows.length})`);
      check(JSON.stringify(kpiRows.map((x) => x[0])) === JSON.stringify(r.changes.map((c) => c.metric)), `reviews #${id}: the API's metrics in order`);
      const gmvRow = kpiRows.find((x) => x[0] === "gmv") || [];
      const gmvWant = (r.changes.find((c) => c.metric === "gmv").current.value / 100).toFixed(2);
      check(/^¥[\d,]+\.\d{2}$/.test(gmvRow[1]) && gmvRow[1].replace(/[¥,]/g, "") === gmvWant, `reviews #${id}: GMV ¥${gmvWant} with two decimals (${gmvRow[1]})`);
      check(kpiRows.every((x) => /\d/.test(x[1]) && /\d/.test(x[2])), `reviews #${id}: every KPI shows numbers (${JSON.stringify(kpiRows)})`);
      check(kpiRows.every((x) => x[3] === "n/a" || /^[+−]?\d+\.\d{2}(%| 個百分點)$/.test(x[3])), `reviews #${id}: changes as ±x.xx% or points (${kpiRows.map((x) => x[3])})`);
      const benchRows = await page.$$eval("#page .review-detail tr.benchmark", (rs) => rs.map((x) => [x.classList.contains("missed"), x.cells[2].textContent.trim()]));
      check(benchRows.length >= 1 && benchRows.length === r.benchmarks.length, `reviews #${id}: the benchmark checks (${benchRows.length} of ${r.benchmarks.length})`);
      check(JSON.stringify(benchRows.map((b) => b[0])) === JSON.stringify(r.benchmarks.map((b) => b.missed)), `reviews #${id}: missed benchmarks highlighted`);
      check(benchRows.every((b) => /%$|n\/a/.test(b[1])), `reviews #${id}: benchmark values as percentages`);
      const panels = await page.$$eval("#page .review-detail table.grid", (ts) => ts.length);
      check(panels === 7, `reviews #${id}: KPI, benchmark, retention, campaign, channel, goal and alert tables (${panels})`);
      check((await page.$$("#page .review-detail .scroll tbody tr:not(:has(td.empty)):not(.channel-part)")).length === r.campaigns.length, `reviews #${id}: the campaign rows`);
      const parts = r.campaigns.reduce((n, c) => n + ((c.by_channel || []).length > 1 ? c.by_channel.length : 0), 0);
      check((await page.$$("#page .review-detail .scroll tbody tr.channel-part")).length === parts, `reviews #${id}: a line per channel under a campaign on several channels (${parts})`);
    };
    await reviewShown(listedIds[0]);
    await shot(page, "10b-reviews");
    // Another stored review (a monthly one) from the list.
    const monthly = stored.json.reviews.find((r) => r.cadence === "monthly");
    await page.click(`#page .review-list tr[data-id="${monthly.id}"] button.review-link`);
    await page
      .waitForFunction((from) => document.querySelector(`#page .review-detail[data-ready] [data-from="${from}"]`), monthly.from, { timeout: 5000 })
      .catch(() => fail("reviews: clicking a monthly review does not show it"));
    await reviewShown(monthly.id);
    await shot(page, "10c-reviews-month");
    // The current month, computed now: an unfinished period, not in the list.
    await page.click("#page button.live-monthly");
    const thisMonth = await page.evaluate(() => {
      const d = new Date();
      return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-01`;
    });
    await page
      .waitForFunction((from) => document.querySelector(`#page .review-detail[data-ready] [data-from="${from}"][data-cadence=monthly]`), thisMonth, { timeout: 5000 })
      .catch(() => fail("reviews: the live monthly review is not shown"));
    check((await page.$$("#page .review-detail tr.kpi-change")).length === 11, "reviews: the live review has its KPI rows");
    check((await page.innerText("#page .review-detail h2").catch(() => "")).includes("即時計算"), "reviews: the live review is marked live");
    check(new URLSearchParams((await page.evaluate(() => location.hash)).split("?")[1]).get("live") === "monthly", "reviews: the live choice is kept in the address");
    await shot(page, "10d-reviews-live-month");
    // Opened from the address: a stored review by id.
    await open(page, base, `reviews?id=${monthly.id}`, "reviews (by id)", `.review-detail[data-ready] [data-from="${monthly.from}"]`);

    // Language: both tables have the same words; English, remembered across a reload, back to Chinese.
    const missing = await page.evaluate(async () => {
      const { TABLES } = await import("/console/js/i18n.js");
      const zh = Object.keys(TABLES.zh);
      const en = Object.keys(TABLES.en);
      return [...zh.filter((k) => !en.includes(k)), ...en.filter((k) => !zh.includes(k))];
    });
    check(missing.length === 0, `i18n: keys missing in one language: ${missing.join(", ")}`);
    await page.selectOption("header select.lang", "en");
    await page.waitForSelector("#page[data-ready]");
    check((await texts(page, "header nav a"))[0] === "Dashboard", "English navigation");
    check((await page.getAttribute("html", "lang")) === "en", "html lang en");
    await open(page, base, "dashboard", "dashboard (English)", ".cards .kpi");
    check((await texts(page, "#page .kpi-label")).includes("Repurchase rate"), "English KPI labels after a reload");
    await shot(page, "11-dashboard-en");
    await page.selectOption("header select.lang", "zh");
    await page.waitForSelector("#page[data-ready]");
    check((await texts(page, "header nav a"))[0] === "總覽", "back to Chinese navigation");

    // Sign out.
    await page.click("header .signout");
    await page.waitForSelector("form.signin #token");
    check(await page.evaluate(() => !localStorage.getItem("flywheel.token") && !sessionStorage.getItem("flywheel.token")), "sign-out forgets the token");
  } finally {
    await browser.close();
  }
}

let server = null;
try {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (apt-get install -y chromium)`);
  if (process.env.FLYWHEEL_BROWSER_URL) {
    if (!process.env.FLYWHEEL_BROWSER_TOKEN) throw new Error("FLYWHEEL_BROWSER_URL needs FLYWHEEL_BROWSER_TOKEN");
    server = { base: process.env.FLYWHEEL_BROWSER_URL.replace(/\/$/, ""), stop: async () => {} };
  } else {
    const t0 = Date.now();
    server = await startDemo();
    console.log(`demo shop of ${USERS} users ready at ${server.base} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  await run(server.base);
} catch (e) {
  fail(`${e.stack || e}`);
} finally {
  if (server) await server.stop();
}

console.log("\npage load (navigation → content visible):");
for (const [name, ms] of timings) console.log(`  ${name.padEnd(22)} ${ms.padStart(5)} ms`);
console.log(`screenshots: ${OUT}`);
if (failures.length) {
  console.error(`\n${failures.length} failure(s):\n  ${[...new Set(failures)].join("\n  ")}`);
  process.exit(1);
}
console.log("browser test passed");
