// The web interface in a real browser: headless Debian chromium driven by
// Playwright, against a server (and a fake Taskcluster) that
// tests/browser.rs starts and describes in the environment. Each test is
// one flow a person follows; axe-core checks every page it visits.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (tests/browser.rs sets it)`);
  return value;
};
const base = env("TOOLTOOL_URL");
const shots = env("TOOLTOOL_SCREENSHOTS");
const files = {
  public: JSON.parse(env("TOOLTOOL_PUBLIC")),
  internal: JSON.parse(env("TOOLTOOL_INTERNAL")),
  managed: JSON.parse(env("TOOLTOOL_MANAGED")),
};
const readerToken = env("TOOLTOOL_READER_TOKEN");
const managerToken = env("TOOLTOOL_MANAGER_TOKEN");
const taskclusterClient = env("TOOLTOOL_TASKCLUSTER_CLIENT");
const axeSource = await readFile(
  createRequire(import.meta.url).resolve("axe-core/axe.min.js"),
  "utf8",
);

let browser;
before(async () => {
  await mkdir(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Containers run as root, where chromium's sandbox cannot start.
    args: ["--no-sandbox"],
  });
});
after(async () => browser?.close());

// A fresh browser profile whose every request must stay on this server
// (and Taskcluster's, for its sign-in); console errors (a CSP refusal, a
// script error) fail the flow.
async function newPage(t, { allowed = [base], viewport } = {}) {
  const context = await browser.newContext({ acceptDownloads: true, viewport });
  const page = await context.newPage();
  const problems = [];
  page.on("request", (r) => {
    if (!allowed.some((origin) => r.url().startsWith(origin))) {
      problems.push(`external request: ${r.url()}`);
    }
  });
  page.on("console", (m) => {
    // Error statuses are the pages under test (403, 404): not problems.
    if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  t.after(async () => {
    await context.close();
    assert.deepEqual(problems, [], "the pages stay on this server and log no errors");
  });
  return page;
}

// axe-core's verdict on the page as it is. Its source is evaluated over
// the DevTools protocol, which the page's CSP (no inline script, no eval)
// does not govern, so the policy under test stays as served.
async function accessible(page, what) {
  const results = await page
    .evaluate(axeSource)
    .then(() =>
      page.evaluate(() =>
        window.axe.run(document, {
          runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
        }),
      ),
    )
    .catch((e) => ({ error: String(e) }));
  assert.equal(results.error, undefined, `${what}: axe ran`);
  const found = results.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`,
  );
  assert.deepEqual(found, [], `${what}: no accessibility violations`);
}

async function downloaded(page, click) {
  const [download] = await Promise.all([page.waitForEvent("download"), click()]);
  return readFile(await download.path());
}

test("search → batch → file → download, keyboard only where it counts", async (t) => {
  const page = await newPage(t);
  await page.goto(base + "/");
  await accessible(page, "home");
  await page.screenshot({ path: path.join(shots, "home.png"), fullPage: true });
  // The search box is reachable from the keyboard and submits with Enter.
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement?.id === "q")) break;
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), "q", "Tab reaches the search box");
  await page.keyboard.type(files.public.name.slice(0, 8));
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/ui\/search\?q=/);
  assert.match(await page.locator("mark").first().innerText(), new RegExp(files.public.name.slice(0, 8)));
  await accessible(page, "search results");

  await page.getByRole("link", { name: `#${files.public.batch}` }).first().click();
  await page.waitForURL(new RegExp(`/ui/batches/${files.public.batch}$`));
  assert.equal(await page.locator("h1").innerText(), `Batch #${files.public.batch}`);
  await accessible(page, "batch");
  const manifest = await downloaded(page, () => page.getByText("Download manifest.tt").click());
  const entries = JSON.parse(manifest.toString("utf8"));
  assert.ok(entries.some((e) => e.digest === files.public.digest && e.filename === files.public.name));

  await page.getByRole("link", { name: files.public.name }).click();
  await page.waitForURL(new RegExp(`/ui/files/${files.public.digest}$`));
  await accessible(page, "file");
  await page.screenshot({ path: path.join(shots, "file.png"), fullPage: true });
  // The script showed the copy buttons (pages work without it too).
  assert.equal(await page.locator("button.copy").count(), 2);
  assert.ok(await page.locator("button.copy").first().isVisible());
  const bytes = await downloaded(page, () => page.getByRole("link", { name: "Download", exact: true }).click());
  assert.equal(bytes.toString("base64"), files.public.content);
});

test("the pages fit a phone", async (t) => {
  const page = await newPage(t, { viewport: { width: 390, height: 844 } });
  for (const [what, url] of [
    ["home", "/"],
    ["file", `/ui/files/${files.public.digest}`],
  ]) {
    await page.goto(base + url);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${what}: no sideways scrolling (${overflow}px too wide)`);
    await accessible(page, `${what} on a phone`);
  }
  await page.screenshot({ path: path.join(shots, "file-phone.png"), fullPage: true });
});

test("a token signs in, the internal file downloads, sign-out leaves a 403 page", async (t) => {
  const page = await newPage(t);
  const download = `${base}/ui/files/${files.internal.digest}/download`;
  const refused = await page.goto(download);
  assert.equal(refused.status(), 403);
  assert.equal(await page.locator("h1").innerText(), "403 Forbidden");
  await accessible(page, "403 page");

  await page.getByRole("link", { name: "Sign in" }).first().click();
  await accessible(page, "sign-in");
  await page.getByLabel("Bearer token").fill(readerToken);
  await page.getByRole("button", { name: "Sign in with this token" }).click();
  await page.waitForURL(/\/ui\/me$/);
  assert.match(await page.locator("main").innerText(), /reader@example\.com/);
  await accessible(page, "who am I");
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "tooltool_session");
  assert.ok(session?.httpOnly, "the session cookie is HttpOnly");
  assert.equal(session.sameSite, "Lax");

  await page.goto(`${base}/ui/files/${files.internal.digest}`);
  const bytes = await downloaded(page, () => page.getByRole("link", { name: "Download", exact: true }).click());
  assert.equal(bytes.toString("base64"), files.internal.content);

  await page.goto(base + "/ui/me");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(base + "/");
  const again = await page.goto(download);
  assert.equal(again.status(), 403);
  assert.equal(await page.locator("h1").innerText(), "403 Forbidden");
});

test("manage changes visibility after confirming; a forged POST changes nothing", async (t) => {
  const page = await newPage(t);
  await page.goto(base + "/ui/sign-in");
  await page.getByLabel("Bearer token").fill(managerToken);
  await page.getByRole("button", { name: "Sign in with this token" }).click();
  await page.waitForURL(/\/ui\/me$/);

  const filePage = `${base}/ui/files/${files.managed.digest}`;
  await page.goto(filePage);
  await accessible(page, "file with management");
  await page.getByRole("button", { name: "Make internal…" }).click();
  assert.equal(await page.locator("h1").innerText(), "Make this file internal?");
  await accessible(page, "confirmation");
  await page.getByRole("button", { name: "Yes, make it internal" }).click();
  await page.waitForURL(filePage);
  assert.equal(await page.locator(".badge").first().innerText(), "internal");

  // The same request without the form's token, with the session cookie
  // the browser holds: refused, and the file stays internal.
  const forged = await page.context().request.post(`${filePage}/manage`, {
    form: { action: "make-public", confirmed: "true" },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 403);
  await page.reload();
  assert.equal(await page.locator(".badge").first().innerText(), "internal");
});

test("Sign in with Taskcluster against the fake deployment", async (t) => {
  const taskcluster = new URL(env("TOOLTOOL_TASKCLUSTER_ROOT")).origin;
  const page = await newPage(t, { allowed: [base, taskcluster] });
  await page.goto(base + "/ui/sign-in");
  await page.getByRole("link", { name: "Sign in with Taskcluster" }).click();
  await page.waitForURL(new RegExp(`^${taskcluster}/.*/login/oauth/authorize`));
  await page.getByRole("button", { name: `Grant as ${taskclusterClient}` }).click();
  await page.waitForURL(/\/ui\/me$/);
  const me = await page.locator("main").innerText();
  assert.match(me, new RegExp(taskclusterClient.replace(/[|/]/g, "\\$&")));
  assert.match(me, /Manage files\s+yes/);
});
