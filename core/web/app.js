// The task page: a small frontend for this API, written as an example to read.
//
// Everything it does goes through the public HTTP API with fetch(), exactly as your own
// frontend would: sign in (/auth/...), list with filters and cursor paging (GET /api/tasks),
// add (POST, with an Idempotency-Key), complete (PATCH .../complete), edit (PATCH with
// If-Match, so that a stale edit is refused with 412), delete, and stay fresh by polling the
// change feed (GET /api/tasks/changes) while the tab is visible. No framework, no build step:
// plain modern JavaScript in one module. The markup is in index.html (two <template>s for
// a task and its edit form), the looks in app.css. Text always goes in with textContent,
// never as markup, so a task's title cannot inject HTML.
//
// Sections: 1. talking to the API, 2. messages, 3. signing in and out, 4. filters and the
// page's URL, 5. the list and its pages, 6. adding, completing, editing and deleting,
// 7. staying fresh, 8. wiring it up.

// ------------------------------------------------------------------ 1. talking to the API

/** Where the token lives: this tab only, so it survives a reload but not closing the tab. */
const SESSION = { token: 'task-api.token', who: 'task-api.who', via: 'task-api.via' };

/** Everything the page remembers besides what the form controls hold. */
const state = {
  token: sessionStorage.getItem(SESSION.token), // the bearer token, or null when signed out
  accounts: null, // whether the built-in accounts are on (null: not known yet)
  via: sessionStorage.getItem(SESSION.via), // 'account' (built-in accounts) or 'token' (pasted)
  cursors: [], // the cursors of the pages before this one, for "Previous"
  cursor: null, // the cursor of this page (null: the first page)
  nextCursor: null, // meta.next_cursor of this page (null: this is the last page)
  focusAfter: null, // { id, part } of the control to focus once the list is drawn again, or 'heading'
  loads: 0, // counts list requests, so that an answer to a superseded one is dropped
};

/** A failed call: the HTTP status and the RFC 9457 problem document the API sent. */
class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `The service answered ${status}.`);
    this.status = status; // 0 when the service could not be reached at all
    this.problem = problem ?? {}; // { type, title, status, detail, code, errors?, request_id }
  }

  /** Whether the problem names this field or query parameter in its `errors`. */
  names(field) {
    return (this.problem.errors ?? []).some((e) => e.field === field);
  }
}

/**
 * Calls the API. `body` is sent as JSON; the bearer token is added when signed in. Returns
 * `{ data, etag }` (data: the parsed JSON body, or null for 204), or throws an ApiError.
 */
async function api(path, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { detail: 'The service could not be reached. Check the connection and try again.' });
  }
  // Successes are application/json, errors application/problem+json; 204 and 304 have no body.
  const type = response.headers.get('Content-Type') ?? '';
  const data = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get('ETag') };
}

/**
 * A fresh Idempotency-Key. crypto.randomUUID() exists only on https:// and localhost, so
 * the key is made from crypto.getRandomValues(), which works everywhere.
 */
function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The `sub` claim of a JWT, for display only: the service, not the page, verifies tokens. */
function tokenSubject(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)).sub ?? null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ 2. messages

const $ = (id) => document.getElementById(id);

/** Shows good news in the polite status line (and clears any error). */
function say(text) {
  $('error').textContent = '';
  $('status').textContent = text;
}

/** Shows an error in the alert line, which screen readers announce at once. */
function complain(text) {
  $('status').textContent = '';
  $('error').textContent = text;
}

/** One sentence for a failure: the problem's `detail`, or what a status means. */
function describe(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
  if (error.status === 503) return 'The database is unavailable right now. Try again in a few seconds.';
  return error.problem.detail ?? error.message;
}

/**
 * What to do when a call fails outside a form: a 401 means the token expired or is no
 * longer accepted, so the session ends; anything else is shown.
 */
function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut('Your session has ended (the token expired or is not accepted). Sign in again.');
  } else {
    complain(describe(error));
  }
}

/** Shows a failure inside `form`: its message, and the fields it names marked invalid. */
function showFormError(form, error) {
  clearFormError(form);
  form.querySelector('.error').textContent = describe(error);
  let first = null;
  for (const { field } of error.problem?.errors ?? []) {
    const control = form.elements.namedItem(field);
    if (control instanceof HTMLElement) {
      control.setAttribute('aria-invalid', 'true');
      first ??= control;
    }
  }
  first?.focus();
}

function clearFormError(form) {
  form.querySelector('.error').textContent = '';
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
}

/** Runs `work` with `button` disabled and marked busy, so a double click sends one request. */
async function busy(button, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ------------------------------------------------------------------ 3. signing in and out

/** Keeps `token` for this tab and shows the tasks. `who` is shown in the header. */
function startSession(token, who, via) {
  state.token = token;
  state.via = via;
  sessionStorage.setItem(SESSION.token, token);
  sessionStorage.setItem(SESSION.who, who);
  sessionStorage.setItem(SESSION.via, via);
  showTasks();
  resetPaging();
  loadTasks().then(startFeed);
  say(`Signed in as ${who}.`);
  $('new-title').focus();
}

/** POST /auth/login or /auth/register: both answer a token envelope. */
async function signInWithAccount(form, action) {
  clearFormError(form);
  const email = form.elements.namedItem('email').value.trim();
  const password = form.elements.namedItem('password').value;
  try {
    const { data } = await api(`/auth/${action}`, { method: 'POST', body: { email, password } });
    form.reset();
    startSession(data.data.access_token, data.data.user.email, 'account');
  } catch (error) {
    if (error.status === 404) {
      // With the `accounts` setting off these routes do not exist.
      error.problem.detail = 'This service has no built-in accounts. Use a bearer token instead.';
      $('token-box').open = true;
    }
    showFormError(form, error);
    if (error.status === 404) $('token').focus();
  }
}

/**
 * Signs in with a pasted token (from Better Auth's JWT plugin, or one minted by your own
 * server). A one-task list checks it (401: the service refuses it); then, with the built-in
 * accounts on, GET /auth/me names its account, else we show the token's `sub`.
 */
async function signInWithToken(form) {
  clearFormError(form);
  const token = form.elements.namedItem('token').value.trim().replace(/^bearer\s+/i, '');
  if (!token) {
    showFormError(form, new ApiError(422, { detail: 'Paste a token first.', errors: [{ field: 'token' }] }));
    return;
  }
  state.token = token;
  try {
    await api('/api/tasks?limit=1');
  } catch (error) {
    state.token = null;
    if (error.status === 401) error.problem.detail = `This token is not accepted: ${error.problem.detail}`;
    showFormError(form, error);
    return;
  }
  let who = tokenSubject(token) ?? 'token user';
  if (state.accounts) {
    // 404: a valid token of a user without a built-in account (another issuer's).
    who = await api('/auth/me').then(({ data }) => data.data.email, () => who);
  }
  form.reset();
  startSession(token, who, 'token');
}

/** Forgets the token. Tokens are stateless: /auth/logout only tells the service. */
function signOut(message = 'Signed out.') {
  if (state.via === 'account') api('/auth/logout', { method: 'POST' }).catch(() => {});
  stopFeed();
  state.token = null;
  state.via = null;
  for (const key of Object.values(SESSION)) sessionStorage.removeItem(key);
  $('list').replaceChildren();
  showSignIn();
  say(message);
}

function showSignIn() {
  $('tasks').hidden = true;
  $('account').hidden = true;
  $('sign-in').hidden = false;
  $('email').focus();
  checkAccounts();
}

/**
 * Whether the built-in accounts are on: OPTIONS on their route answers 204 when they are
 * and 404 when they are not (the `accounts` setting). Without them, only a token works.
 */
async function checkAccounts() {
  let on = true;
  try {
    on = (await fetch('/auth/login', { method: 'OPTIONS' })).status !== 404;
  } catch {
    // Unreachable: leave the form as it is; signing in will say what is wrong.
  }
  state.accounts = on;
  $('account-form').hidden = !on;
  $('accounts-off').hidden = on;
  if (!on) {
    $('token-box').open = true;
    $('token').focus();
  }
}

function showTasks() {
  $('sign-in').hidden = true;
  $('tasks').hidden = false;
  $('account').hidden = false;
  $('who').textContent = sessionStorage.getItem(SESSION.who) ?? '';
}

// ------------------------------------------------------------------ 4. filters and the page's URL

// The filter form's fields are named like the API's query parameters, so the page's own URL
// (/?status=pending&sort=due_date) is the query it sends to GET /api/tasks: a filtered view
// can be bookmarked, and survives a reload.
const DEFAULTS = { status: 'all', sort: '-created_at', limit: '20' };

/** The filters that differ from the defaults, as query parameters. */
function filterParams() {
  const form = $('filters');
  const params = new URLSearchParams();
  const q = form.elements.namedItem('q').value.trim();
  if (q) params.set('q', q);
  for (const name of ['status', 'sort', 'limit']) {
    const value = form.elements.namedItem(name).value;
    if (value !== DEFAULTS[name]) params.set(name, value);
  }
  // Several priorities are one comma-separated parameter; none ticked means any.
  const priorities = [...form.querySelectorAll('input[name="priority"]:checked')].map((c) => c.value);
  if (priorities.length) params.set('priority', priorities.join(','));
  for (const name of ['due_after', 'due_before']) {
    const value = form.elements.namedItem(name).value;
    if (value) params.set(name, value);
  }
  return params;
}

/** Sets the filter form from query parameters (the page's URL on load). */
function applyFilters(params) {
  const form = $('filters');
  form.elements.namedItem('q').value = params.get('q') ?? '';
  for (const name of ['status', 'sort', 'limit']) {
    const select = form.elements.namedItem(name);
    select.value = params.get(name) ?? DEFAULTS[name];
    if (select.selectedIndex < 0) select.value = DEFAULTS[name]; // a value it does not offer
  }
  const priorities = (params.get('priority') ?? '').split(',');
  for (const box of form.querySelectorAll('input[name="priority"]')) box.checked = priorities.includes(box.value);
  for (const name of ['due_after', 'due_before']) form.elements.namedItem(name).value = params.get(name) ?? '';
  // Show the extra filters when one of them is in use.
  $('more-filters').open = ['priority', 'due_after', 'due_before', 'limit'].some((n) => params.has(n));
}

/** After a filter changes: back to the first page, and the URL says what is shown. */
function filtersChanged() {
  const params = filterParams();
  history.replaceState(null, '', params.size ? `?${params}` : location.pathname);
  resetPaging();
  loadTasks();
}

// ------------------------------------------------------------------ 5. the list and its pages

function resetPaging() {
  state.cursors = [];
  state.cursor = null;
}

function pageSize() {
  return Number($('limit').value);
}

/**
 * GET /api/tasks with the filters, the page size and this page's cursor, then draws the
 * page. meta.total counts every matching task; meta.next_cursor is null on the last page.
 */
async function loadTasks() {
  const load = ++state.loads;
  const params = filterParams();
  params.set('limit', String(pageSize()));
  if (state.cursor) params.set('cursor', state.cursor);
  try {
    const { data } = await api(`/api/tasks?${params}`);
    if (load !== state.loads) return; // a newer request (the user kept typing) wins
    if (data.data.length === 0 && state.cursors.length) {
      // This page emptied (its tasks were deleted or completed away): show the one before.
      state.cursor = state.cursors.pop();
      return loadTasks();
    }
    state.nextCursor = data.meta.next_cursor;
    render(data.data, data.meta);
  } catch (error) {
    if (load !== state.loads) return;
    if (error.status === 400 && error.names('cursor')) {
      // A cursor is bound to its filters and sort; start over rather than fail.
      resetPaging();
      return loadTasks();
    }
    fail(error);
  }
}

/** Draws one page of tasks, keeping an open edit form and the keyboard focus in place. */
function render(tasks, meta) {
  const list = $('list');
  const focus = state.focusAfter ?? focusedPart();
  state.focusAfter = null;
  const editing = list.querySelector('li.editing');
  list.replaceChildren(...tasks.map((t) => (editing?.dataset.id === String(t.id) ? editing : taskItem(t))));

  const first = state.cursors.length * pageSize() + 1;
  const last = first + tasks.length - 1;
  const noun = meta.total === 1 ? 'task' : 'tasks';
  $('summary').textContent = meta.total ? `${first}–${last} of ${meta.total} ${noun}` : '';
  $('empty').hidden = meta.total > 0;
  if (!meta.total) {
    $('empty').textContent = filterParams().size ? 'No tasks match these filters.' : 'No tasks yet: add one above.';
  }
  const pages = Math.max(1, Math.ceil(meta.total / pageSize()));
  $('page-number').textContent = pages > 1 ? `Page ${state.cursors.length + 1} of ${pages}` : '';
  $('prev').disabled = state.cursors.length === 0;
  $('next').disabled = !state.nextCursor;

  if (focus) {
    const target = focus === 'heading' ? null : list.querySelector(`li[data-id="${focus.id}"] .${focus.part}`);
    if (target) target.focus();
    else $('tasks-title').focus(); // the task left this view (deleted, filtered out)
  }
}

/** Which task control has the focus, to focus it again after drawing. */
function focusedPart() {
  const li = document.activeElement?.closest('#list li');
  if (!li) return null;
  const part = ['done', 'edit', 'delete'].find((p) => document.activeElement.classList.contains(p));
  return part ? { id: li.dataset.id, part } : null;
}

function nextPage() {
  state.cursors.push(state.cursor);
  state.cursor = state.nextCursor;
  loadTasks();
}

function previousPage() {
  state.cursor = state.cursors.pop() ?? null;
  loadTasks();
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** A `YYYY-MM-DD` due date as the reader writes dates (it is a calendar day, not an instant). */
function formatDate(day) {
  const [y, m, d] = day.split('-').map(Number);
  return dateFormat.format(new Date(y, m - 1, d));
}

/** Today in the reader's time zone, as `YYYY-MM-DD` (so it compares with due dates as text). */
function today() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

const PRIORITY_NAMES = { low: 'Low', medium: 'Medium', high: 'High' };

/** A copy of a <template>'s first element. */
function fromTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

/** One task's row: a checkbox labelled by the title, the details, Edit and Delete. */
function taskItem(task) {
  const li = fromTemplate('task-template');
  li.dataset.id = task.id;
  li.classList.add(task.priority);
  li.classList.toggle('completed', task.completed);

  const box = li.querySelector('.done');
  box.id = `done-${task.id}`;
  box.checked = task.completed;
  box.addEventListener('change', () => setCompleted(task, box));
  const title = li.querySelector('.title');
  title.htmlFor = box.id;
  title.textContent = task.title;
  li.querySelector('.description').textContent = task.description ?? '';

  const priority = li.querySelector('.priority');
  priority.textContent = `${PRIORITY_NAMES[task.priority]} priority`;
  priority.classList.add(task.priority);
  const due = li.querySelector('.due');
  if (task.due_date) {
    const overdue = !task.completed && task.due_date < today();
    due.textContent = `· Due ${formatDate(task.due_date)}${overdue ? ' (overdue)' : ''}`;
    due.classList.toggle('overdue', overdue);
  }

  const edit = li.querySelector('.edit');
  edit.setAttribute('aria-label', `Edit “${task.title}”`);
  edit.addEventListener('click', () => startEdit(li, task.id));
  const remove = li.querySelector('.delete');
  remove.setAttribute('aria-label', `Delete “${task.title}”`);
  remove.addEventListener('click', () => deleteTask(task));
  return li;
}

// ------------------------------------------------------------------ 6. adding, completing, editing, deleting

/**
 * The Idempotency-Key of the task being added. It is kept when sending fails (a retry of
 * the same form cannot create the task twice, even if the first request did arrive) and
 * dropped once the task is created or the form changes (a new body needs a new key).
 */
let createKey = null;

/** POST /api/tasks: 201 with the task. Only the fields filled in are sent. */
async function addTask(form) {
  clearFormError(form);
  const get = (name) => form.elements.namedItem(name).value.trim();
  const body = { title: get('title'), priority: get('priority') };
  if (!body.title) {
    showFormError(form, new ApiError(422, { detail: 'Give the task a title.', errors: [{ field: 'title' }] }));
    return;
  }
  if (get('due_date')) body.due_date = get('due_date');
  if (get('description')) body.description = get('description');
  createKey ??= newIdempotencyKey();
  try {
    const { data } = await api('/api/tasks', { method: 'POST', body, headers: { 'Idempotency-Key': createKey } });
    createKey = null;
    form.reset();
    form.elements.namedItem('title').focus();
    say(`Added “${data.data.title}”.`);
    resetPaging();
    await loadTasks();
  } catch (error) {
    if (error.status === 401) fail(error);
    else showFormError(form, error);
  }
}

/** PATCH /api/tasks/{id}/complete with {"completed": …}: sets the state (a body-less PATCH toggles). */
async function setCompleted(task, box) {
  state.focusAfter = { id: String(task.id), part: 'done' };
  try {
    await busy(box, () => api(`/api/tasks/${task.id}/complete`, { method: 'PATCH', body: { completed: box.checked } }));
    say(box.checked ? `Completed “${task.title}”.` : `“${task.title}” is pending again.`);
  } catch (error) {
    box.checked = !box.checked;
    fail(error);
  }
  await loadTasks(); // the task may leave this view (say, completed under "Pending")
}

/**
 * Opens the edit form. The list carries no ETags, so the task is read first: its ETag goes
 * back in If-Match when saving, and the service refuses the change (412) if the task
 * changed since, instead of silently overwriting someone else's edit.
 */
async function startEdit(li, id) {
  let task; // the task as last read
  let etag; // its ETag, sent back in If-Match
  const read = async () => {
    const answer = await api(`/api/tasks/${id}`);
    task = answer.data.data;
    etag = answer.etag;
  };
  try {
    await read();
  } catch (error) {
    if (error.status === 404) {
      complain('This task no longer exists.');
      return loadTasks();
    }
    return fail(error);
  }
  // The list may have been drawn again meanwhile (the feed saw a change): edit the row shown.
  li = $('list').querySelector(`li[data-id="${id}"]`);
  if (!li) return;
  const form = fromTemplate('edit-template');
  const field = (name) => form.elements.namedItem(name);
  const fill = (t) => {
    field('title').value = t.title;
    field('priority').value = t.priority;
    field('due_date').value = t.due_date ?? '';
    field('description').value = t.description ?? '';
  };
  fill(task);
  li.classList.add('editing');
  li.replaceChildren(form);
  field('title').focus();

  const reload = form.querySelector('.reload');
  const close = () => {
    li.classList.remove('editing'); // render() now draws it as a row again
    state.focusAfter = { id: String(id), part: 'edit' };
    loadTasks();
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormError(form);
    // PATCH is partial: send only what changed. Nothing changed is no request at all.
    const now = {
      title: field('title').value.trim(),
      priority: field('priority').value,
      due_date: field('due_date').value || null,
      description: field('description').value.trim() || null,
    };
    const changes = Object.fromEntries(Object.entries(now).filter(([k, v]) => v !== (task[k] ?? null)));
    if (Object.keys(changes).length === 0) return close();
    try {
      const saved = await busy(form.querySelector('[type="submit"]'), () =>
        api(`/api/tasks/${id}`, { method: 'PATCH', body: changes, headers: { 'If-Match': etag } }),
      );
      say(`Saved “${saved.data.data.title}”.`);
      close();
    } catch (error) {
      if (error.status === 412) {
        // If-Match did not match: someone (another tab, another device) changed the task.
        error.problem.detail = 'This task was changed elsewhere. Reload it to see the latest version, then make your change again.';
        reload.hidden = false;
      } else if (error.status === 404) {
        complain('This task no longer exists.');
        return loadTasks();
      } else if (error.status === 401) {
        return fail(error);
      }
      showFormError(form, error);
    }
  });

  // Reload: read the task again, with its new ETag, and show its current values.
  reload.addEventListener('click', async () => {
    try {
      await read();
      fill(task);
      reload.hidden = true;
      clearFormError(form);
      say(`Reloaded “${task.title}”: this is its latest version.`);
      field('title').focus();
    } catch (error) {
      showFormError(form, error);
    }
  });

  form.querySelector('.cancel').addEventListener('click', close);
  form.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') close();
  });
}

/** DELETE /api/tasks/{id}: 204. A task already gone is a 404, which is just as good. */
async function deleteTask(task) {
  if (!confirm(`Delete “${task.title}”? This cannot be undone.`)) return;
  try {
    await api(`/api/tasks/${task.id}`, { method: 'DELETE' });
    say(`Deleted “${task.title}”.`);
  } catch (error) {
    if (error.status === 404) say(`“${task.title}” was already deleted.`);
    else return fail(error);
  }
  state.focusAfter = 'heading'; // the row is gone
  await loadTasks();
}

/** DELETE /api/tasks?status=completed: {"data": {"deleted": N}}. */
async function deleteCompleted(button) {
  if (!confirm('Delete every completed task? This cannot be undone.')) return;
  try {
    const { data } = await busy(button, () => api('/api/tasks?status=completed', { method: 'DELETE' }));
    const n = data.data.deleted;
    say(n ? `Deleted ${n} completed ${n === 1 ? 'task' : 'tasks'}.` : 'There were no completed tasks.');
    await loadTasks();
  } catch (error) {
    fail(error);
  }
}

// ------------------------------------------------------------------ 7. staying fresh

// Another tab, another device or a script may change the tasks. The change feed
// (docs/sync.md) says when: the page keeps its token (meta.next) and, while the tab is
// visible, asks every few seconds what changed since. When anything did, it lists the
// current page again, so that filters, sorting, paging and counts stay those of the service.
const POLL_MS = 3000;
const feed = {
  on: false, // polling is wanted (signed in)
  token: null, // meta.next of the last answer (null: none yet, the feed starts afresh)
  timer: 0, // the next poll
  busy: false, // a poll is running
  run: 0, // counts starts and stops, so that the answer of an earlier session is dropped
  failures: 0, // failed polls in a row: the wait doubles with each, up to a minute
};

/** Reads the feed from `since` (null: its beginning) to its end: `{ next, changed }`. */
async function drain(since) {
  let changed = false;
  for (;;) {
    const params = new URLSearchParams({ limit: '1000' });
    if (since) params.set('since', since);
    const { data } = await api(`/api/tasks/changes?${params}`);
    changed ||= data.data.length > 0;
    since = data.meta.next;
    if (!data.meta.has_more) return { next: since, changed };
  }
}

/**
 * One poll, then the next one is planned. A first token lists again too (the list shown may
 * be older than it); a 410 (sync_reset: the token is too old, or of another database) starts
 * afresh at once; a 401 ends the session as everywhere else; other failures (the network,
 * a 503) are quiet and wait longer each time.
 */
async function poll() {
  clearTimeout(feed.timer);
  if (!feed.on || feed.busy || document.visibilityState !== 'visible') return;
  const run = feed.run;
  feed.busy = true;
  let wait = POLL_MS;
  try {
    const fresh = !feed.token;
    const { next, changed } = await drain(feed.token);
    if (run !== feed.run) return;
    feed.token = next;
    feed.failures = 0;
    if (changed || fresh) await loadTasks();
  } catch (error) {
    if (run !== feed.run) return;
    if (error.status === 401) return fail(error);
    if (feed.token && (error.status === 410 || error.status === 400)) {
      feed.token = null;
      wait = 0;
    } else {
      feed.failures += 1;
      wait = Math.min(POLL_MS * 2 ** feed.failures, 60_000);
    }
  } finally {
    if (run === feed.run) {
      feed.busy = false;
      if (feed.on && document.visibilityState === 'visible') feed.timer = setTimeout(poll, wait);
    }
  }
}

function startFeed() {
  stopFeed();
  feed.on = Boolean(state.token); // not when the first list ended the session (401)
  poll();
}

function stopFeed() {
  clearTimeout(feed.timer);
  Object.assign(feed, { on: false, token: null, busy: false, run: feed.run + 1, failures: 0 });
}

// A hidden tab does not ask; shown again, it asks at once.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') poll();
  else clearTimeout(feed.timer);
});

// ------------------------------------------------------------------ 8. wiring it up

/** The submit button that sent `event`'s form (Enter in a field is the first one). */
const submitter = (event) => event.submitter ?? event.target.querySelector('[type="submit"]');

$('account-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const button = submitter(event);
  busy(button, () => signInWithAccount(event.target, button.value));
});

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  busy(submitter(event), () => signInWithToken(event.target));
});

$('sign-out').addEventListener('click', () => signOut());

const newTask = $('new-task');
newTask.addEventListener('submit', (event) => {
  event.preventDefault();
  busy(submitter(event), () => addTask(newTask));
});
newTask.addEventListener('input', () => {
  createKey = null;
});

// Filters apply as they change; typing in the search box waits for a pause.
const filters = $('filters');
let typing = null;
filters.addEventListener('submit', (event) => {
  event.preventDefault();
  clearTimeout(typing);
  filtersChanged();
});
filters.addEventListener('input', (event) => {
  if (event.target.name !== 'q') return;
  clearTimeout(typing);
  typing = setTimeout(filtersChanged, 300);
});
filters.addEventListener('change', (event) => {
  if (event.target.name !== 'q') filtersChanged();
});
// "Clear filters" resets the controls after this event, hence the timeout.
filters.addEventListener('reset', () => setTimeout(filtersChanged));

$('prev').addEventListener('click', previousPage);
$('next').addEventListener('click', nextPage);
$('clear-completed').addEventListener('click', (event) => deleteCompleted(event.currentTarget));

applyFilters(new URLSearchParams(location.search));
if (state.token) {
  showTasks();
  loadTasks().then(startFeed);
} else {
  showSignIn();
}
