// Opens bprof flame graphs (SVG and HTML) in headless Chromium and checks that
// search reports the expected share and that a click zooms; validates the
// speedscope output against the schema shipped in the speedscope package.
//
// Usage: node flamegraph.test.js DIR
// DIR holds small.svg, small.html, small.json and expect.json:
//   {"search": REGEX, "matched": "50.0", "zoom": TITLE_PREFIX, "screenshots": DIR}
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");
const Ajv = require("ajv");

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function frameIndex(page, prefix) {
  return page.evaluate((prefix) => {
    const gs = document.getElementById("frames").children;
    for (let i = 0; i < gs.length; i++) {
      if (gs[i].querySelector("title").textContent.startsWith(prefix)) return i;
    }
    return -1;
  }, prefix);
}

async function checkZoom(page, exp, what) {
  const i = await frameIndex(page, exp.zoom);
  check(i >= 0, `${what}: no frame titled ${JSON.stringify(exp.zoom)}`);
  const rect = page.locator("#frames > g").nth(i).locator("rect");
  const before = Number(await rect.getAttribute("width"));
  await rect.click();
  const after = Number(await rect.getAttribute("width"));
  const full = await page.evaluate(() => JSON.parse(document.getElementById("bprof-data").textContent).width - 2 * JSON.parse(document.getElementById("bprof-data").textContent).pad);
  check(before < full - 1, `${what}: frame already full width before the click (${before})`);
  check(Math.abs(after - full) < 0.2, `${what}: clicked frame is ${after} wide after zoom, want ${full}`);
  const x = Number(await rect.getAttribute("x"));
  check(Math.abs(x - 10) < 0.2, `${what}: clicked frame starts at ${x}, want 10`);
  console.log(`ok ${what}: zoom makes the frame ${after}px wide (was ${before.toFixed(1)})`);
}

async function checkSVG(ctx, dir, exp) {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("file://" + path.join(dir, "small.svg"));
  page.once("dialog", (d) => d.accept(exp.search));
  await page.click("#search");
  const matched = await page.textContent("#matched");
  check(matched === `Matched: ${exp.matched}%`, `svg: search ${exp.search} reports ${JSON.stringify(matched)}, want Matched: ${exp.matched}%`);
  console.log(`ok svg: search reports ${matched}`);
  await page.screenshot({ path: path.join(exp.screenshots, "svg.png") });
  await checkZoom(page, exp, "svg");
  await page.screenshot({ path: path.join(exp.screenshots, "svg-zoomed.png") });
  await page.click("#reset");
  check(errors.length === 0, "svg: script errors: " + errors.join("; "));
  await page.close();
}

async function checkHTML(ctx, dir, exp) {
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => { if (!r.url().startsWith("file:")) errors.push("network request " + r.url()); });
  await page.goto("file://" + path.join(dir, "small.html"));
  await page.fill("#search-input", exp.search);
  const matched = await page.textContent("#matched");
  check(matched === `Matched: ${exp.matched}%`, `html: search ${exp.search} reports ${JSON.stringify(matched)}, want Matched: ${exp.matched}%`);
  console.log(`ok html: search reports ${matched}`);
  await page.screenshot({ path: path.join(exp.screenshots, "html.png"), fullPage: true });
  await checkZoom(page, exp, "html");
  // Sort the table by self (ascending, then descending on a second click).
  await page.click("#top th:nth-child(4)");
  let selfs = await page.$$eval("#top tbody tr td:nth-child(4)", (tds) => tds.map((td) => Number(td.dataset.v)));
  const desc = selfs.slice().sort((a, b) => b - a);
  check(JSON.stringify(selfs) === JSON.stringify(desc), "html: table not sorted by self: " + selfs);
  console.log("ok html: table sorts by self");
  check(errors.length === 0, "html: " + errors.join("; "));
  await page.close();
}

function checkSpeedscope(dir) {
  const schemaPath = require.resolve("speedscope/package.json").replace(/package\.json$/, "dist/release/file-format-schema.json");
  const schema = JSON.parse(fs.readFileSync(schemaPath, "utf8"));
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  const file = JSON.parse(fs.readFileSync(path.join(dir, "small.json"), "utf8"));
  check(validate(file), "speedscope: invalid against schema: " + ajv.errorsText(validate.errors));
  for (const p of file.profiles) {
    check(p.samples.length === p.weights.length, "speedscope: samples and weights differ in length");
    for (const s of p.samples) for (const f of s) check(f >= 0 && f < file.shared.frames.length, "speedscope: frame index out of range");
  }
  console.log(`ok speedscope: valid against ${path.basename(schemaPath)} (${file.profiles.length} profiles)`);
}

async function checkSpeedscopeImport(ctx, dir, exp) {
  // The speedscope app itself, offline: load the file through its file input.
  const index = require.resolve("speedscope/package.json").replace(/package\.json$/, "dist/release/index.html");
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => { errors.push("dialog: " + d.message()); d.dismiss(); });
  await page.goto("file://" + index);
  await page.setInputFiles("input[type=file]", path.join(dir, "small.json"));
  await page.waitForFunction(() => document.title.includes("small.json") || document.title.includes("cpu"), null, { timeout: 15000 }).catch(async (e) => { throw new Error(e.message + " title=" + (await page.title())); });
  await page.screenshot({ path: path.join(exp.screenshots, "speedscope.png") });
  check(errors.length === 0, "speedscope import: " + errors.join("; "));
  console.log(`ok speedscope: the speedscope app imported it (title ${JSON.stringify(await page.title())})`);
  await page.close();
}

async function main() {
  const dir = path.resolve(process.argv[2] || ".");
  const exp = JSON.parse(fs.readFileSync(path.join(dir, "expect.json"), "utf8"));
  exp.screenshots = exp.screenshots || fs.mkdtempSync(path.join(os.tmpdir(), "bprof-shots-"));
  checkSpeedscope(dir);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bprof-chromium-"));
  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  try {
    await checkSVG(ctx, dir, exp);
    await checkHTML(ctx, dir, exp);
    await checkSpeedscopeImport(ctx, dir, exp);
  } finally {
    await ctx.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log("screenshots in " + exp.screenshots);
}

main().catch((e) => {
  console.error("FAIL " + e.message);
  process.exit(1);
});
