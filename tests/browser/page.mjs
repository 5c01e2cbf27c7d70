// Loads one page in Debian's headless chromium and reports what a test needs to judge it:
//   node page.mjs URL SCREENSHOT.png [READY-SELECTOR]
// Prints one JSON object: console errors and page errors, every request that left the
// page's own origin (or, for a file: URL, any request but the file), the drawn SVG marks
// the tests compare with the daemon's figures, and the page's text. The screenshot is
// 1280x800. Exit status 0 when the page loaded (the test decides whether it passed).
import { chromium } from 'playwright-core';

const [url, screenshot, readySelector] = process.argv.slice(2);
const origin = new URL(url).origin;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new'],
});
const errors = [];
const foreign = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('data:')) return;
    if (url.startsWith('file:') ? u !== url : new URL(u).origin !== origin) foreign.push(u);
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  if (readySelector) await page.waitForSelector(readySelector, { timeout: 15000 });
  await page.waitForTimeout(300); // a CSP violation report arrives asynchronously
  const marks = await page.evaluate(() => {
    const pick = (sel, attrs) => [...document.querySelectorAll(sel)].map((e) =>
      Object.fromEntries(attrs.map((a) => [a, e.getAttribute(a)])));
    return {
      recentBars: pick('#score-hist rect.recent-bar', ['data-bin', 'data-count', 'height']),
      expectedBars: pick('#score-hist rect[data-kind="expected"]', ['data-bin', 'data-share', 'height']),
      threshold: document.querySelector('#threshold-line') !== null,
      driftRows: pick('#drift tbody tr', ['data-field']).map((r) => r['data-field']),
      driftCells: [...document.querySelectorAll('#drift tbody tr')].map((r) =>
        [...r.cells].map((c) => ({ text: c.textContent, cls: c.className }))),
      lossLines: pick('#losses polyline', ['class', 'data-member', 'points']),
      historyRows: document.querySelectorAll('#history tbody tr').length,
      reportMarks: pick('[data-mark]', ['data-mark', 'data-value']),
      text: document.body.innerText,
    };
  });
  await page.screenshot({ path: screenshot });
  const headers = response ? response.headers() : {};
  console.log(JSON.stringify({ errors, foreign, csp: headers['content-security-policy'] || null, ...marks }));
} finally {
  await browser.close();
}
