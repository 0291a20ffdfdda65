// Drive headless Chromium for tests/store/test_browser.py: open page.html, connect Neo4j's browser driver to the
// embedded store over WebSocket, run the calls the test lists, wait while the test restarts the server, run again
// on the same connection, then draw a graph query and screenshot it.
//
// Usage: node drive.mjs SPEC.json. The spec (a 0600 file: it holds the password) has page, chromium, bolt, user,
// password, calls, after_restart, draw {database, cypher, params, caption, screenshot}. Each step prints one JSON
// line on stdout; after {"phase": "restart"} it reads one JSON line {"bolt": URL} on stdin.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
  "--no-first-run", "--disable-component-update", "--disable-sync"];

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const emit = obj => process.stdout.write(JSON.stringify(obj) + "\n");
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const profile = mkdtempSync(join(tmpdir(), "neurflow-chromium-"));

const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium, headless: true, args: FLAGS, viewport: { width: 1280, height: 860 },
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", e => process.stderr.write(`page error: ${e.message}\n`));
  page.on("console", m => { if (m.type() === "error") process.stderr.write(`console: ${m.text()}\n`); });
  await page.goto(spec.page);
  const server = await page.evaluate(([url, user, pw]) => window.nf.connect(url, user, pw),
    [spec.bolt, spec.user, spec.password]);
  const answers = await page.evaluate(calls => window.nf.runAll(calls), spec.calls);
  emit({ phase: "before", server, browser: context.browser()?.version() ?? null, answers });

  emit({ phase: "restart" });
  const next = JSON.parse((await lines.next()).value);
  // The connection the page made stays; only a server at another address needs a new one.
  const reused = next.bolt === await page.evaluate(() => window.nf.address());
  if (!reused) {
    await page.evaluate(([url, user, pw]) => window.nf.close().then(() => window.nf.connect(url, user, pw)),
      [next.bolt, spec.user, spec.password]);
  }
  const again = await page.evaluate(calls => window.nf.runAll(calls), spec.after_restart);
  emit({ phase: "after", reused, answers: again });

  const d = spec.draw;
  const drawn = await page.evaluate(([db, q, p, c]) => window.nf.draw(db, q, p, c), [d.database, d.cypher, d.params, d.caption]);
  await page.screenshot({ path: d.screenshot });
  emit({ phase: "drawn", ...drawn });
  await page.evaluate(() => window.nf.close());
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(0);
