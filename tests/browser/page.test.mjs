// Drives the web page at / in a real browser (Debian's headless Chromium through
// playwright-core), as a person would: sign up, add tasks, complete, filter, edit (also a
// stale edit), delete, reload, search, sort, page, see changes made elsewhere (the change
// feed, also after the tab was hidden), sign in on a phone, sign out. Each step checks what
// the page shows. Screenshots go to <screenshot.png> (desktop) and
// <screenshot>-phone.png.
//
//   node tests/browser/page.test.mjs <base-url> <screenshot.png>
//
// tests/spin-host/tests/browser.rs serves the real component and runs this script.
// CHROMIUM_PATH overrides the browser (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error('usage: node page.test.mjs <base-url> <screenshot.png>');
  process.exit(2);
}
const phoneShot = screenshot.replace(/(\.png)?$/, '-phone.png');

// Never hang CI: the whole run has two minutes.
setTimeout(() => {
  console.error('not ok - the browser test took over 120 s');
  process.exit(1);
}, 120_000).unref();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  // No network but loopback here: keep Chromium from calling home.
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

/** Console errors and uncaught exceptions (a CSP violation is a console error too). */
const problems = [];
async function newPage(options) {
  const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC', ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => {
    // The expected failures (412, 401, 404) are logged by Chromium as failed loads.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  return page;
}

let passed = 0;
let failed = 0;
async function step(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok ${passed + failed} - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok ${passed + failed} - ${name}\n${error.stack ?? error}`);
    throw error;
  }
}

/** Retries `check` (which throws or asserts) until it passes or 10 s are over. */
async function eventually(check, timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > end) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const titles = (page) => page.locator('#list li .title').allTextContents();
const text = (page, selector) => page.locator(selector).textContent();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const listIs = (page, expected) => eventually(async () => assert.deepEqual(await titles(page), expected));
const says = (page, expected) => eventually(async () => assert.equal(await text(page, '#status'), expected));

const email = `ann.${Date.now()}@example.com`;
const password = 'correct horse battery';
const page = await newPage({ viewport: { width: 1280, height: 900 } });

try {
  await step('the page loads with a strict policy and asks to sign in', async () => {
    const response = await page.goto(base);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-type'], /^text\/html/);
    assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
    assert.equal(await page.title(), 'Tasks');
    await page.locator('#sign-in').waitFor();
    assert.equal(await page.locator('#tasks').isHidden(), true);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'email');
  });

  await step('every control has a label', async () => {
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim())))
        .map((el) => el.outerHTML),
    );
    assert.deepEqual(unlabelled, []);
  });

  await step('a new account signs up and sees an empty list', async () => {
    await page.fill('#email', email);
    await page.fill('#password', password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await eventually(async () => assert.equal(await text(page, '#who'), email));
    await says(page, `Signed in as ${email}.`);
    await eventually(async () => assert.equal(await text(page, '#empty'), 'No tasks yet: add one above.'));
    assert.equal(await page.locator('#sign-in').isHidden(), true);
  });

  await step('three tasks are added (the last with Enter)', async () => {
    await page.fill('#new-title', 'Buy milk');
    await page.selectOption('#new-priority', 'high');
    await page.fill('#new-due', '2030-12-01');
    await page.locator('#new-task summary').click();
    await page.fill('#new-description', '2 litres, semi-skimmed');
    await page.getByRole('button', { name: 'Add task' }).click();
    await listIs(page, ['Buy milk']);
    await says(page, 'Added “Buy milk”.');

    await page.fill('#new-title', 'Write report');
    await page.getByRole('button', { name: 'Add task' }).click();
    await listIs(page, ['Write report', 'Buy milk']);

    await page.fill('#new-title', 'Call Ann');
    await page.selectOption('#new-priority', 'low');
    await page.press('#new-title', 'Enter');
    await listIs(page, ['Call Ann', 'Write report', 'Buy milk']);
    assert.equal(await text(page, '#summary'), '1–3 of 3 tasks');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new-title');
    const milk = page.locator('#list li', { hasText: 'Buy milk' });
    assert.equal(await milk.locator('.description').textContent(), '2 litres, semi-skimmed');
    assert.equal(await milk.locator('.meta').textContent(), 'High priority · Due Dec 1, 2030');
  });

  await step('one is completed', async () => {
    await page.getByRole('checkbox', { name: 'Buy milk', exact: true }).check();
    await says(page, 'Completed “Buy milk”.');
    const milk = page.locator('#list li', { hasText: 'Buy milk' });
    await eventually(async () => assert.match(await milk.getAttribute('class'), /\bcompleted\b/));
    assert.equal(await page.getByRole('checkbox', { name: 'Buy milk', exact: true }).isChecked(), true);
    assert.equal(await text(page, '#summary'), '1–3 of 3 tasks');
  });

  await step('the list is filtered to pending tasks, and the URL says so', async () => {
    await page.selectOption('#status-filter', 'pending');
    await listIs(page, ['Call Ann', 'Write report']);
    assert.equal(await text(page, '#summary'), '1–2 of 2 tasks');
    assert.equal(new URL(page.url()).search, '?status=pending');
  });

  await step('a task is edited', async () => {
    await page.getByRole('button', { name: 'Edit “Write report”' }).click();
    const form = page.locator('#list form.edit-form');
    await form.waitFor();
    assert.equal(await form.getByLabel('Title').inputValue(), 'Write report');
    await form.getByLabel('Title').fill('Write the report');
    await form.getByLabel('Priority').selectOption('high');
    await form.getByRole('button', { name: 'Save' }).click();
    await says(page, 'Saved “Write the report”.');
    await listIs(page, ['Call Ann', 'Write the report']);
    const row = page.locator('#list li', { hasText: 'Write the report' });
    assert.equal(await row.locator('.priority').textContent(), 'High priority');
    // The focus is back on the task's Edit button.
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Edit “Write the report”');
  });

  await step('a stale edit says the task changed elsewhere, and Reload shows the latest', async () => {
    await page.getByRole('button', { name: 'Edit “Call Ann”' }).click();
    const form = page.locator('#list form.edit-form');
    await form.waitFor();
    // Meanwhile, another tab renames the task.
    const id = await page.locator('#list li.editing').getAttribute('data-id');
    const status = await page.evaluate(async (id) => {
      const token = sessionStorage.getItem('task-api.token');
      const r = await fetch(`/api/tasks/${id}`, {
        method: 'PATCH',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ title: 'Call Ann at 5' }),
      });
      return r.status;
    }, id);
    assert.equal(status, 200);
    await form.getByLabel('Description').fill('About the report');
    await form.getByRole('button', { name: 'Save' }).click();
    await eventually(async () => assert.match(await form.locator('.error').textContent(), /changed elsewhere.*Reload/));
    assert.equal(await form.getByRole('button', { name: 'Reload' }).isVisible(), true);
    await form.getByRole('button', { name: 'Reload' }).click();
    await eventually(async () => assert.equal(await form.getByLabel('Title').inputValue(), 'Call Ann at 5'));
    assert.equal(await form.locator('.error').textContent(), '');
    await form.getByLabel('Description').fill('About the report');
    await form.getByRole('button', { name: 'Save' }).click();
    await says(page, 'Saved “Call Ann at 5”.');
    await listIs(page, ['Call Ann at 5', 'Write the report']);
    const row = page.locator('#list li', { hasText: 'Call Ann at 5' });
    assert.equal(await row.locator('.description').textContent(), 'About the report');
  });

  await step('a task is deleted', async () => {
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Delete “Call Ann at 5”' }).click();
    await says(page, 'Deleted “Call Ann at 5”.');
    await listIs(page, ['Write the report']);
    assert.equal(await text(page, '#summary'), '1–1 of 1 task');
  });

  await step('after a reload the session and the filter are still there', async () => {
    await page.reload();
    await listIs(page, ['Write the report']);
    assert.equal(await text(page, '#who'), email);
    assert.equal(await page.locator('#status-filter').inputValue(), 'pending');
    await page.selectOption('#status-filter', 'all');
    await listIs(page, ['Write the report', 'Buy milk']);
    assert.equal(new URL(page.url()).search, '');
  });

  await step('search and sort', async () => {
    await page.fill('#q', 'MILK');
    await listIs(page, ['Buy milk']);
    assert.equal(new URL(page.url()).search, '?q=MILK');
    await page.fill('#q', 'nothing like this');
    await eventually(async () => {
      assert.equal(await page.locator('#empty').isVisible(), true);
      assert.equal(await text(page, '#empty'), 'No tasks match these filters.');
    });
    assert.deepEqual(await titles(page), []);
    await page.fill('#q', '');
    await listIs(page, ['Write the report', 'Buy milk']);
    await page.selectOption('#sort', 'title');
    await listIs(page, ['Buy milk', 'Write the report']);
    await page.selectOption('#sort', '-created_at');
    await listIs(page, ['Write the report', 'Buy milk']);
  });

  const more = [
    ['Renew passport', 'high', '2020-03-01', 'The old one ran out.'],
    ['Book dentist appointment', 'medium', null, null],
    ['Pay electricity bill', 'high', '2031-01-15', null],
    ['Plan team offsite', 'low', '2031-02-10', 'Two days, somewhere with a lake'],
    ['Fix bike tyre', 'medium', null, null],
    ['Water the plants', 'low', null, 'Balcony and kitchen'],
    ["Reply to Sam's email", 'medium', '2030-11-30', null],
    ['Order printer ink', 'low', null, null],
    ['Back up laptop', 'high', null, null],
    ['Read chapter 3', 'medium', '2031-03-01', null],
  ];

  await step('ten more tasks page by cursor, ten at a time', async () => {
    const created = await page.evaluate(async (more) => {
      const token = sessionStorage.getItem('task-api.token');
      let ok = 0;
      for (const [title, priority, due_date, description] of more) {
        const r = await fetch('/api/tasks', {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ title, priority, due_date, description }),
        });
        if (r.status === 201) ok += 1;
      }
      return ok;
    }, more);
    assert.equal(created, 10);
    await page.locator('#more-filters summary').click();
    await page.selectOption('#limit', '10');
    const newest = more.map((t) => t[0]).reverse();
    await listIs(page, newest);
    assert.equal(await text(page, '#summary'), '1–10 of 12 tasks');
    assert.equal(await text(page, '#page-number'), 'Page 1 of 2');
    assert.equal(await page.locator('#prev').isDisabled(), true);
    await page.getByRole('button', { name: 'Next →' }).click();
    await listIs(page, ['Write the report', 'Buy milk']);
    assert.equal(await text(page, '#summary'), '11–12 of 12 tasks');
    assert.equal(await page.locator('#next').isDisabled(), true);
    await page.getByRole('button', { name: '← Previous' }).click();
    await listIs(page, newest);
    const passport = page.locator('#list li', { hasText: 'Renew passport' });
    assert.equal(await passport.locator('.due').textContent(), '· Due Mar 1, 2020 (overdue)');
    await page.locator('#more-filters summary').click(); // fold the extra filters again
  });

  await step('a desktop screenshot', async () => {
    await page.locator('#q').blur();
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  // Another client (here: this script, with the same user's token) changes the tasks: the
  // page polls the change feed and shows the change without a reload.
  const newest = more.map((t) => t[0]).reverse();
  const elsewhere = async (method, path, body) => {
    const token = await page.evaluate(() => sessionStorage.getItem('task-api.token'));
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (body) headers['Content-Type'] = 'application/json';
    const r = await fetch(new URL(path, base), { method, headers, body: body && JSON.stringify(body) });
    return { status: r.status, data: r.status === 204 ? null : await r.json() };
  };
  let plumber;
  await step('a task added elsewhere shows up without a reload', async () => {
    await page.evaluate(() => { window.notReloaded = true; });
    const { status, data } = await elsewhere('POST', '/api/tasks', { title: 'Ring the plumber' });
    assert.equal(status, 201);
    plumber = data.data.id;
    await listIs(page, ['Ring the plumber', ...newest.slice(0, 9)]);
    assert.equal(await text(page, '#summary'), '1–10 of 13 tasks');
    assert.equal(await page.evaluate(() => window.notReloaded), true);
  });

  await step('a task deleted elsewhere disappears', async () => {
    assert.equal((await elsewhere('DELETE', `/api/tasks/${plumber}`)).status, 204);
    await listIs(page, newest);
    assert.equal(await text(page, '#summary'), '1–10 of 12 tasks');
    assert.equal(await page.evaluate(() => window.notReloaded), true);
  });

  await step('a hidden tab stops polling, and catches up once visible again', async () => {
    const polls = [];
    const onRequest = (r) => {
      if (new URL(r.url()).pathname === '/api/tasks/changes') polls.push(r.url());
    };
    page.on('request', onRequest);
    try {
      const visibility = (state) => page.evaluate((state) => {
        if (state) Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
        else delete document.visibilityState; // back to the browser's own
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
      await visibility('hidden');
      await sleep(500); // a poll already running may end
      const before = polls.length;
      const { status, data } = await elsewhere('POST', '/api/tasks', { title: 'Sweep the floor' });
      assert.equal(status, 201);
      await sleep(4000); // longer than a poll's wait
      assert.equal(polls.length, before, 'a hidden tab polled');
      assert.deepEqual(await titles(page), newest);
      await visibility(null);
      await eventually(() => assert.ok(polls.length > before, 'no poll on becoming visible'), 1000);
      await listIs(page, ['Sweep the floor', ...newest.slice(0, 9)]);
      assert.equal((await elsewhere('DELETE', `/api/tasks/${data.data.id}`)).status, 204);
      await listIs(page, newest);
      assert.equal(await text(page, '#summary'), '1–10 of 12 tasks');
    } finally {
      page.off('request', onRequest);
    }
  });

  await step('on a phone, signing in with the password shows the same tasks', async () => {
    const phone = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await phone.goto(base);
    await phone.fill('#email', email.toUpperCase()); // emails are compared case-insensitively
    await phone.fill('#password', password);
    await phone.press('#password', 'Enter'); // "Sign in" is the form's first button
    await listIs(phone, [...more.map((t) => t[0]).reverse(), 'Write the report', 'Buy milk']);
    // Nothing is wider than the screen.
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `the page is ${width}px wide`);
    await phone.screenshot({ path: phoneShot, fullPage: true });
    await phone.context().close();
  });

  let token;
  await step('signing out forgets the token, also after a reload', async () => {
    token = await page.evaluate(() => sessionStorage.getItem('task-api.token'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await says(page, 'Signed out.');
    await page.locator('#sign-in').waitFor();
    assert.equal(await page.locator('#tasks').isHidden(), true);
    await page.reload();
    await page.locator('#sign-in').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  await step('a pasted bearer token signs in too, and a bad one is refused', async () => {
    await page.getByText('Use a bearer token instead').click();
    await page.getByLabel('Bearer token').fill('not.a.token');
    await page.getByRole('button', { name: 'Use this token' }).click();
    await eventually(async () => assert.match(await text(page, '#token-error'), /^This token is not accepted: /));
    await page.getByLabel('Bearer token').fill(`Bearer ${token}`);
    await page.getByRole('button', { name: 'Use this token' }).click();
    await eventually(async () => assert.equal(await text(page, '#who'), email)); // from GET /auth/me
    await eventually(async () => assert.match(await text(page, '#summary'), / of 12 tasks$/));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in').waitFor();
  });

  await step('a wrong password is refused with the service\'s message', async () => {
    await page.fill('#email', email);
    await page.fill('#password', 'not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await eventually(async () => assert.equal(await text(page, '#account-error'), 'the email or password is not correct'));
    assert.equal(await page.locator('#tasks').isHidden(), true);
  });

  await step('no console errors and no policy violations', async () => {
    assert.deepEqual(problems, []);
  });
} catch {
  // Reported by step().
} finally {
  await browser.close();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
