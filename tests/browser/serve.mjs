// Drive headless Chromium through `neurflow-graph serve` for tests/serve/test_browser_serve.py: open the index,
// search a class, open its circuit, hover a group (its paths to the logit light up), click through to the group,
// to a class sharing its neurons, and to the comparison of the two; a screenshot of each step.
//
// Usage: node serve.mjs SPEC.json. The spec has url, chromium, search, hover (a group id of the class found),
// shots (a folder). Prints one JSON line with what each step saw.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
  "--no-first-run", "--disable-component-update", "--disable-sync"];

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const profile = mkdtempSync(join(tmpdir(), "neurflow-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium, headless: true, args: FLAGS, viewport: { width: 1400, height: 1000 },
});
const seen = { errors: [], requests: [] };
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", e => seen.errors.push(e.message));
  page.on("console", m => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("request", r => seen.requests.push(r.url()));
  page.on("response", r => { if (r.status() >= 400) seen.errors.push(`${r.status()} ${r.url()}`); });
  const shot = async name => page.screenshot({ path: join(spec.shots, `${name}.png`) });

  await page.goto(spec.url);
  seen.index = { title: await page.title(), rows: await page.locator("tr[data-class]").count() };
  await shot("1-index");

  await page.fill("input[name=q]", spec.search);
  await Promise.all([page.waitForURL(/\?q=/), page.press("input[name=q]", "Enter")]);
  seen.search = await page.locator("tr[data-class]").evaluateAll(rows => rows.map(r => r.dataset.class));
  await shot("2-search");

  await Promise.all([page.waitForURL(/\/class\//), page.locator("tr[data-class] a").first().click()]);
  seen.cls = { url: page.url(), nodes: await page.locator("svg.circuit .node").count(),
    images: await page.locator("svg.circuit image").evaluateAll(imgs => imgs.map(i => i.getAttribute("href"))) };
  seen.cls.loaded = await page.evaluate(async hrefs => {
    const ok = await Promise.all(hrefs.map(h => fetch(h).then(r => r.ok)));
    return ok.filter(Boolean).length;
  }, seen.cls.images);
  // The later sections arrive after the circuit: each placeholder is replaced by its section's table.
  await page.waitForFunction(() => !document.querySelector("section.later"), null, { timeout: 60000 });
  seen.cls.sections = await page.evaluate(() => ({
    bias: document.querySelectorAll("#bias table tr").length - 1,
    sharing: document.querySelectorAll("#sharing tr.sharing").length,
    faithfulness: document.querySelectorAll("#faithfulness-layers tr").length,
    trust: document.getElementById("trust").innerText,
    cypher: [...document.querySelectorAll("#cypher > section h3")].map(h => h.textContent.trim()),
    count: document.querySelector("#cypher .n-queries").textContent,
  }));
  await page.locator("#canvas").screenshot({ path: join(spec.shots, "class-canvas.png") });
  await shot("3-class");

  const node = page.locator(`svg.circuit .node[data-group="${spec.hover}"]`);
  await node.hover();
  seen.hover = await page.evaluate(() => ({
    focus: document.querySelector("svg.circuit").classList.contains("focus"),
    nodes: [...document.querySelectorAll("svg.circuit .node.lit")].map(n => n.dataset.group),
    edges: [...document.querySelectorAll("svg.circuit .edge.lit")].map(e => [e.dataset.child, e.dataset.parent]),
    dimmed: getComputedStyle(document.querySelector("svg.circuit .edge:not(.lit)") || document.body).strokeOpacity,
  }));
  await shot("4-hover");
  await page.mouse.move(2, 2);
  seen.unhover = await page.locator("svg.circuit .lit").count();

  await node.hover();
  await Promise.all([page.waitForURL(/\/group\//), node.click()]);
  seen.group = { url: page.url(), h1: await page.locator("h1").innerText(),
    shares: await page.locator("a.share-class").count() };
  await shot("5-group");

  await Promise.all([page.waitForURL(/\/class\//), page.locator("a.share-class").first().click()]);
  seen.sharing = { url: page.url(), h1: await page.locator("h1").innerText() };
  await shot("6-sharing-class");

  await Promise.all([page.waitForURL(/\/compare\?/), page.locator("tr.sharing a.compare").first().click()]);
  seen.compare = { url: page.url(), pairs: await page.locator("tr.pair").count(),
    marked: await page.locator("svg.circuit .node.shared").count() };
  await shot("7-compare");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(seen) + "\n");
process.exit(0);
