// Opens notebooks/cola.ipynb in a real JupyterLab in Debian's Chromium, runs every cell in
// quick mode, and checks that the sample table, the tokens table and the loss plot render with
// no error output. Screenshots go to out/.
//
//   node tests/browser/jupyterlab.mjs      (make test runs it after set-up)
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const outDir = path.join(root, "out");
const notebookPath = path.join(root, "notebooks", "cola.ipynb");
const RUN_TIMEOUT_MS = 40 * 60 * 1000;

const log = (msg) => console.log(`[browser] ${msg}`);
const sha = (file) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitForServer(url, proc) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`jupyter lab exited with ${proc.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`JupyterLab did not answer at ${url}`);
}

// JupyterLab settings for this run only: no autosave (the committed notebook keeps its full
// outputs) and no windowing (every cell stays in the DOM, so checks see all of them).
function labSettings() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lab-settings-"));
  const write = (ext, file, body) => {
    fs.mkdirSync(path.join(dir, ext), { recursive: true });
    fs.writeFileSync(path.join(dir, ext, file), JSON.stringify(body));
  };
  write("@jupyterlab/docmanager-extension", "plugin.jupyterlab-settings", { autosave: false });
  write("@jupyterlab/notebook-extension", "tracker.jupyterlab-settings", { windowingMode: "none" });
  write("@jupyterlab/apputils-extension", "notification.jupyterlab-settings", { fetchNews: "false", checkForUpdates: false });
  return dir;
}

async function kernelStatus(page) {
  return page.evaluate(() => {
    const el = document.querySelector(".jp-Notebook-ExecutionIndicator");
    return el ? el.getAttribute("data-status") : null;
  });
}

async function waitForKernelIdle(page) {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if ((await kernelStatus(page)) === "idle") return;
    await page.waitForTimeout(1000);
  }
  await page.screenshot({ path: path.join(outDir, "jupyterlab-no-kernel.png") });
  throw new Error(`the kernel did not become idle (status ${await kernelStatus(page)})`);
}

// Clicks Run ▸ Run All Cells and checks that execution really started (a busy kernel or a
// [*] prompt); tries again if the click landed before the notebook was ready for it.
async function runAll(page) {
  for (let attempt = 1; attempt <= 3; attempt++) {
    await page.locator(".jp-Notebook").first().click({ position: { x: 5, y: 5 } }).catch(() => {});
    await page.click("li.lm-MenuBar-item:has-text('Run')");
    await page.click(".lm-Menu-item:has-text('Run All Cells')");
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const started = await page.$$eval(".jp-CodeCell .jp-InputArea-prompt",
        (els) => els.some((e) => /\[(\*|\d+)\]/.test(e.textContent)));
      if (started || (await kernelStatus(page)) === "busy") return;
      await page.waitForTimeout(500);
    }
    log(`Run All Cells did not start (attempt ${attempt}); trying again`);
    await page.keyboard.press("Escape");
  }
  await page.screenshot({ path: path.join(outDir, "jupyterlab-not-started.png") });
  throw new Error("Run All Cells did not start any cell");
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const before = sha(notebookPath);
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const env = {
    ...process.env,
    BERT_FINETUNE_QUICK: "1",
    JUPYTERLAB_SETTINGS_DIR: labSettings(),
    JUPYTERLAB_WORKSPACES_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "lab-ws-")),
  };
  const lab = spawn(
    "jupyter",
    ["lab", "--no-browser", "--ip=127.0.0.1", `--port=${port}`, `--IdentityProvider.token=${token}`,
      `--ServerApp.root_dir=${root}`, "--ServerApp.open_browser=False", "--allow-root"],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const labLog = fs.createWriteStream(path.join(outDir, "jupyterlab-server.log"));
  lab.stdout.pipe(labLog);
  lab.stderr.pipe(labLog);
  let browser;
  let failures = [];
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitForServer(`${base}/api/status?token=${token}`, lab);
    log(`JupyterLab is up on port ${port}`);
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${base}/lab/tree/notebooks/cola.ipynb?token=${token}`);
    await page.waitForSelector(".jp-Notebook .jp-Cell", { timeout: 120_000 });
    log("notebook open; running all cells (quick mode)");

    // Run ▸ Run All Cells, through the menu a user would use, once the kernel is ready.
    await waitForKernelIdle(page);
    await page.screenshot({ path: path.join(outDir, "jupyterlab-opened.png") });
    await runAll(page);

    const codeCells = await page.locator(".jp-CodeCell").count();
    const started = Date.now();
    let lastReport = 0;
    for (;;) {
      const prompts = await page.$$eval(".jp-CodeCell .jp-InputArea-prompt", (els) => els.map((e) => e.textContent.trim()));
      const done = prompts.filter((p) => /^\[\d+\]:$/.test(p)).length;
      const busy = prompts.some((p) => p.includes("*"));
      const errors = await page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").count();
      if (errors > 0) break;
      if (!busy && done === codeCells) break;
      if (Date.now() - started > RUN_TIMEOUT_MS) throw new Error(`cells still running after ${RUN_TIMEOUT_MS / 60000} min`);
      if (Date.now() - lastReport > 30_000) {
        log(`${done}/${codeCells} cells done after ${Math.round((Date.now() - started) / 1000)}s`);
        lastReport = Date.now();
      }
      await page.waitForTimeout(2000);
    }
    log(`run finished after ${Math.round((Date.now() - started) / 1000)}s`);

    const check = (ok, what) => {
      log(`${ok ? "ok  " : "FAIL"} ${what}`);
      if (!ok) failures.push(what);
    };
    const errorCount = await page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").count();
    check(errorCount === 0, "no error output");
    const stderrErrors = await page.$$eval(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
      (els) => els.map((e) => e.textContent).filter((t) => /error/i.test(t)));
    check(stderrErrors.length === 0, `no error text on stderr ${stderrErrors.slice(0, 1)}`);

    const sample = page.locator(".jp-OutputArea-output table:has(th:text-is('sentence_source'))").first();
    check(await sample.count() === 1 && (await sample.locator("tbody tr").count()) === 10, "the 10-row CoLA sample table is rendered");
    const tokens = page.locator(".jp-OutputArea-output table:has(td:text-is('[CLS]'))").first();
    check(await tokens.count() === 1 && (await tokens.locator("td:text-is('2256')").count()) === 1, "the tokens table is rendered");
    // A trusted output shows the SVG, an untrusted one the PNG: either is an <img> data URL.
    // Each figure is found by the call in its cell.
    const figures = [
      ["loss-plot", "viz::loss_curve(", "the loss plot"],
      ["token-lengths", "viz::token_lengths(", "the token-length histogram"],
      ["confusion", "viz::confusion_matrix(", "the confusion matrix"],
      ["attention", "viz::attention_map(", "the attention heatmap"],
    ];
    const shots = [["sample", sample], ["tokens", tokens]];
    for (const [name, call, what] of figures) {
      const img = page.locator(".jp-CodeCell", { hasText: call }).locator(".jp-OutputArea-output img[src^='data:image/']").first();
      const ok = (await img.count()) === 1 && (await img.evaluate((el) => el.complete && el.naturalWidth > 300));
      check(ok, `${what} image is rendered`);
      shots.push([name, img]);
    }

    for (const [name, el] of shots) {
      if (await el.count()) {
        await el.scrollIntoViewIfNeeded();
        await page.waitForTimeout(300);
        await page.screenshot({ path: path.join(outDir, `jupyterlab-${name}.png`) });
      }
    }
    log(`screenshots in ${outDir}/jupyterlab-*.png`);
  } finally {
    if (browser) await browser.close();
    lab.kill("SIGTERM");
    if (sha(notebookPath) !== before) failures.push("the committed notebook was modified by the browser run");
  }
  if (failures.length) {
    console.error(`[browser] ${failures.length} check(s) failed`);
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
