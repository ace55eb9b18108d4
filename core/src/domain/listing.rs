//! `GET /tasks`: the query (filters, sort, limit, cursor), the total order every store
//! follows, and the opaque keyset cursor.
//!
//! A cursor names the last task of a page by its sort value and id, plus a digest of the
//! filters and sort it was issued for, so it is refused for another query. Because the order
//! is total (ties broken by id in the sort's direction), "the tasks after this position" is
//! exact and pages never skip or repeat a task, even while tasks are added.

use std::cmp::Ordering;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::field::{FieldError, has_control};
use crate::domain::ids::TaskId;
use crate::domain::task::{Priority, Task};
use crate::domain::time::{DueDate, Timestamp};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page.
pub const MAX_LIMIT: u32 = 100;
/// Longest `q`, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// The parameters of `GET /tasks`; any other is ignored.
const PARAMETERS: [&str; 8] = [
    "status",
    "priority",
    "q",
    "due_before",
    "due_after",
    "sort",
    "limit",
    "cursor",
];

/// A query string that [`ListQuery::parse`] refuses: every parameter with a value that is
/// not allowed, each named. (The HTTP layer answers it 400 `invalid_parameter`.)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid query parameter")]
pub struct QueryError(pub Vec<FieldError>);

/// Which tasks by completion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StatusFilter {
    /// Every task.
    #[default]
    All,
    /// Tasks not completed.
    Pending,
    /// Completed tasks.
    Completed,
}

/// The field a list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Title, compared in its lower-cased form ([`crate::Title::folded`]).
    Title,
    /// Priority rank.
    Priority,
    /// Due date; tasks without one come last in both directions.
    DueDate,
}

impl SortKey {
    /// Every key by its API name (also the OpenAPI document's list of sorts).
    pub(crate) const NAMES: [(&'static str, SortKey); 5] = [
        ("created_at", SortKey::CreatedAt),
        ("updated_at", SortKey::UpdatedAt),
        ("title", SortKey::Title),
        ("priority", SortKey::Priority),
        ("due_date", SortKey::DueDate),
    ];

    /// The API name of the key.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }

    /// The value of this key for `task`: what a cursor records and what sorting compares.
    pub fn value_of(self, task: &Task) -> SortValue {
        match self {
            SortKey::CreatedAt => SortValue::Time(task.created_at),
            SortKey::UpdatedAt => SortValue::Time(task.updated_at),
            SortKey::Title => SortValue::Text(task.title.folded()),
            SortKey::Priority => SortValue::Rank(task.priority.rank()),
            SortKey::DueDate => SortValue::Date(task.due_date),
        }
    }
}

/// Ascending or descending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl Direction {
    fn apply(self, o: Ordering) -> Ordering {
        match self {
            Direction::Asc => o,
            Direction::Desc => o.reverse(),
        }
    }
}

/// A sort: key and direction. The default is newest first (`-created_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sort {
    /// What is compared.
    pub key: SortKey,
    /// In which direction.
    pub direction: Direction,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::CreatedAt,
            direction: Direction::Desc,
        }
    }
}

impl Sort {
    /// Parses `created_at`, `-title`, …
    ///
    /// ```
    /// use task_api_core::{Direction, Sort, SortKey};
    /// let s = Sort::parse("-due_date").unwrap();
    /// assert_eq!((s.key, s.direction), (SortKey::DueDate, Direction::Desc));
    /// assert!(Sort::parse("colour").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<Sort> {
        let (direction, name) = match s.strip_prefix('-') {
            Some(rest) => (Direction::Desc, rest),
            None => (Direction::Asc, s),
        };
        let key = SortKey::NAMES.iter().find(|(n, _)| *n == name)?.1;
        Some(Sort { key, direction })
    }

    /// Compares two sort values with ids in this sort's total order: the value in the sort's
    /// direction (missing due dates last either way), then the id in the same direction.
    pub fn compare(&self, a: (&SortValue, TaskId), b: (&SortValue, TaskId)) -> Ordering {
        let by_value = match (a.0, b.0) {
            (SortValue::Date(None), SortValue::Date(Some(_))) => Ordering::Greater,
            (SortValue::Date(Some(_)), SortValue::Date(None)) => Ordering::Less,
            (x, y) => self.direction.apply(x.cmp(y)),
        };
        by_value.then_with(|| self.direction.apply(a.1.cmp(&b.1)))
    }

    /// Compares two tasks in this sort's total order.
    pub fn compare_tasks(&self, a: &Task, b: &Task) -> Ordering {
        self.compare((&self.key.value_of(a), a.id), (&self.key.value_of(b), b.id))
    }
}

impl std::fmt::Display for Sort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.direction == Direction::Desc {
            f.write_char('-')?;
        }
        f.write_str(self.key.as_str())
    }
}

/// The value a task has under a sort key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SortValue {
    /// `created_at` / `updated_at`.
    Time(Timestamp),
    /// The folded title.
    Text(String),
    /// The priority rank.
    Rank(i16),
    /// The due date, if any.
    Date(Option<DueDate>),
}

/// Where the previous page ended: the sort value and id of its last task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The last task's value under the query's sort key.
    pub value: SortValue,
    /// The last task's id.
    pub id: TaskId,
}

/// A validated `GET /tasks` query.
///
/// ```
/// use task_api_core::{ListQuery, StatusFilter};
/// let q = ListQuery::parse("status=pending&priority=high,low&sort=-due_date&limit=20").unwrap();
/// assert_eq!(q.status(), StatusFilter::Pending);
/// assert_eq!(q.limit(), 20);
/// assert!(ListQuery::parse("status=done&limit=0").is_err()); // both named in the error
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    status: StatusFilter,
    priorities: Vec<Priority>,
    search: Option<String>,
    due_before: Option<DueDate>,
    due_after: Option<DueDate>,
    sort: Sort,
    limit: u32,
    after: Option<Position>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            status: StatusFilter::All,
            priorities: Vec::new(),
            search: None,
            due_before: None,
            due_after: None,
            sort: Sort::default(),
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl ListQuery {
    /// Parses a URL query string. Unknown parameters are ignored, and a repeated parameter
    /// takes its last value. Values are trimmed; an empty one is refused (code `blank`), as
    /// is a `q` or cursor holding a control character. Every invalid value is reported, each
    /// naming its parameter.
    ///
    /// ```
    /// use task_api_core::ListQuery;
    /// assert!(ListQuery::parse("_=&status=pending").is_ok()); // unknown, so ignored
    /// assert!(ListQuery::parse("due_before=").is_err()); // empty: not the same as absent
    /// assert!(ListQuery::parse("q=milk%00").is_err()); // NUL
    /// ```
    pub fn parse(query: &str) -> Result<ListQuery, QueryError> {
        let mut q = ListQuery::default();
        let mut errors = Vec::new();
        let mut cursor = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let Some(&name) = PARAMETERS.iter().find(|p| **p == name) else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                errors.push(FieldError::new(
                    name,
                    "blank",
                    format!("{name} must not be empty: leave the parameter out instead"),
                ));
                continue;
            }
            match name {
                "status" => match value {
                    "all" => q.status = StatusFilter::All,
                    "pending" => q.status = StatusFilter::Pending,
                    "completed" => q.status = StatusFilter::Completed,
                    _ => errors.push(bad("status", "status must be all, pending or completed")),
                },
                "priority" => {
                    let parsed: Option<Vec<Priority>> =
                        value.split(',').map(|p| Priority::parse(p.trim())).collect();
                    match parsed {
                        Some(mut ps) => {
                            ps.sort();
                            ps.dedup();
                            q.priorities = ps;
                        }
                        None => errors.push(bad(
                            "priority",
                            "priority must be low, medium or high, comma-separated",
                        )),
                    }
                }
                "q" => {
                    let before = errors.len();
                    if value.chars().count() > MAX_SEARCH_CHARS {
                        errors.push(bad("q", "q must be at most 200 characters"));
                    }
                    if has_control(value) {
                        errors.push(FieldError::new(
                            "q",
                            "control_character",
                            "q must not contain control characters",
                        ));
                    }
                    if errors.len() == before {
                        q.search = Some(value.to_lowercase());
                    }
                }
                field @ ("due_before" | "due_after") => {
                    match DueDate::parse(value) {
                        Some(d) if field == "due_before" => q.due_before = Some(d),
                        Some(d) => q.due_after = Some(d),
                        None => errors.push(bad(
                            field,
                            format!("{field} must be a real date written YYYY-MM-DD"),
                        )),
                    }
                }
                "sort" => match Sort::parse(value) {
                    Some(s) => q.sort = s,
                    None => errors.push(bad(
                        "sort",
                        "sort must be created_at, updated_at, title, priority or due_date, optionally prefixed by -",
                    )),
                },
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = n,
                    _ => errors.push(bad("limit", "limit must be a whole number from 1 to 100")),
                },
                "cursor" => cursor = Some(value.to_owned()),
                _ => {}
            }
        }
        // The cursor is checked against the final filters and sort, whatever the order of
        // the parameters.
        if let Some(c) = cursor {
            match q.decode_cursor(&c) {
                Some(p) => q.after = Some(p),
                None => errors.push(bad("cursor", "cursor was not issued for this query")),
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(QueryError(errors))
        }
    }

    /// Completion filter.
    pub fn status(&self) -> StatusFilter {
        self.status
    }

    /// Priorities to keep, sorted and distinct; empty means any.
    pub fn priorities(&self) -> &[Priority] {
        &self.priorities
    }

    /// Lower-cased text to find in the folded title or description.
    pub fn search(&self) -> Option<&str> {
        self.search.as_deref()
    }

    /// Keep tasks due on or before this date (tasks without a due date are left out).
    pub fn due_before(&self) -> Option<DueDate> {
        self.due_before
    }

    /// Keep tasks due on or after this date (tasks without a due date are left out).
    pub fn due_after(&self) -> Option<DueDate> {
        self.due_after
    }

    /// The order.
    pub fn sort(&self) -> Sort {
        self.sort
    }

    /// Page size, 1 to 100.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Where the previous page ended, if this is not the first page.
    pub fn after(&self) -> Option<&Position> {
        self.after.as_ref()
    }

    /// Whether `task` passes the filters (not the cursor).
    pub fn matches(&self, task: &Task) -> bool {
        let status_ok = match self.status {
            StatusFilter::All => true,
            StatusFilter::Pending => !task.completed,
            StatusFilter::Completed => task.completed,
        };
        let priority_ok = self.priorities.is_empty() || self.priorities.contains(&task.priority);
        let due_ok = match (self.due_after, self.due_before, task.due_date) {
            (None, None, _) => true,
            (_, _, None) => false,
            (after, before, Some(d)) => {
                after.is_none_or(|a| d >= a) && before.is_none_or(|b| d <= b)
            }
        };
        let search_ok = self.search.as_deref().is_none_or(|s| {
            task.title.folded().contains(s)
                || task
                    .description
                    .as_ref()
                    .is_some_and(|d| d.folded().contains(s))
        });
        status_ok && priority_ok && due_ok && search_ok
    }

    /// Whether `task` comes after the cursor position in this query's order.
    pub fn is_after_cursor(&self, task: &Task) -> bool {
        self.after.as_ref().is_none_or(|p| {
            self.sort
                .compare((&self.sort.key.value_of(task), task.id), (&p.value, p.id))
                == Ordering::Greater
        })
    }

    /// The opaque cursor for the page that follows `last`.
    pub fn cursor_after(&self, last: &Task) -> String {
        self.encode_cursor(&Position {
            value: self.sort.key.value_of(last),
            id: last.id,
        })
    }

    fn encode_cursor(&self, position: &Position) -> String {
        let mut raw = format!("{}|{}|", self.digest(), position.id);
        match &position.value {
            SortValue::Time(t) => write!(raw, "{}", t.as_millis()),
            SortValue::Text(s) => write!(raw, "{s}"),
            SortValue::Rank(r) => write!(raw, "{r}"),
            SortValue::Date(d) => d.map_or(Ok(()), |d| write!(raw, "{d}")),
        }
        .ok();
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// This query as a URL query string that [`ListQuery::parse`] reads back as an equal
    /// query, cursor included: what a Rust client of the HTTP API sends.
    ///
    /// ```
    /// use task_api_core::ListQuery;
    /// let q = ListQuery::parse("priority=high,low&q=Milk&sort=-title&limit=5").unwrap();
    /// assert_eq!(ListQuery::parse(&q.to_query_string()).unwrap(), q);
    /// ```
    pub fn to_query_string(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        let status = match self.status {
            StatusFilter::All => "all",
            StatusFilter::Pending => "pending",
            StatusFilter::Completed => "completed",
        };
        out.append_pair("status", status);
        if !self.priorities.is_empty() {
            let names: Vec<&str> = self.priorities.iter().map(|p| p.as_str()).collect();
            out.append_pair("priority", &names.join(","));
        }
        if let Some(q) = &self.search {
            out.append_pair("q", q);
        }
        if let Some(d) = self.due_before {
            out.append_pair("due_before", &d.to_string());
        }
        if let Some(d) = self.due_after {
            out.append_pair("due_after", &d.to_string());
        }
        out.append_pair("sort", &self.sort.to_string());
        out.append_pair("limit", &self.limit.to_string());
        if let Some(p) = &self.after {
            out.append_pair("cursor", &self.encode_cursor(p));
        }
        out.finish()
    }

    fn decode_cursor(&self, cursor: &str) -> Option<Position> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        let mut parts = raw.splitn(3, '|');
        if parts.next()? != self.digest() {
            return None;
        }
        let id = TaskId::parse(parts.next()?)?;
        let value = parts.next()?;
        let value = match self.sort.key {
            SortKey::CreatedAt | SortKey::UpdatedAt => {
                SortValue::Time(Timestamp::from_millis(value.parse().ok()?))
            }
            // A folded title never holds a control character; NUL would not even reach
            // PostgreSQL.
            SortKey::Title if has_control(value) => return None,
            SortKey::Title => SortValue::Text(value.to_owned()),
            SortKey::Priority => SortValue::Rank(Priority::from_rank(value.parse().ok()?)?.rank()),
            SortKey::DueDate if value.is_empty() => SortValue::Date(None),
            SortKey::DueDate => SortValue::Date(Some(DueDate::parse(value)?)),
        };
        Some(Position { value, id })
    }

    /// A short digest of everything that decides which tasks come in which order (not the
    /// limit: a client may change its page size between pages).
    fn digest(&self) -> String {
        let status = match self.status {
            StatusFilter::All => "a",
            StatusFilter::Pending => "p",
            StatusFilter::Completed => "c",
        };
        let priorities: String = self
            .priorities
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let canonical = format!(
            "{status}\0{priorities}\0{}\0{}\0{}\0{}",
            self.search.as_deref().unwrap_or(""),
            self.due_before.map(|d| d.to_string()).unwrap_or_default(),
            self.due_after.map(|d| d.to_string()).unwrap_or_default(),
            self.sort,
        );
        let digest = hmac_sha256::Hash::hash(canonical.as_bytes());
        digest[..6]
            .iter()
            .fold(String::with_capacity(12), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

fn bad(field: &'static str, message: impl Into<std::borrow::Cow<'static, str>>) -> FieldError {
    FieldError::new(field, "invalid_value", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::UserId;
    use crate::domain::task::{NewTask, Title};

    fn fields(query: &str) -> Vec<String> {
        match ListQuery::parse(query) {
            Err(QueryError(e)) => e.into_iter().map(|e| e.field.into_owned()).collect(),
            other => panic!("expected an invalid query, got {other:?}"),
        }
    }

    fn task(id: i64, title: &str, due: Option<&str>) -> Task {
        let mut new = NewTask::new(Title::parse(title).unwrap());
        new.due_date = due.and_then(DueDate::parse);
        Task::create(
            TaskId::new(id).unwrap(),
            UserId::parse("u").unwrap(),
            new,
            Timestamp::from_millis(id),
        )
    }

    #[test]
    fn defaults_are_all_newest_first_fifty() {
        let q = ListQuery::parse("").unwrap();
        assert_eq!(q, ListQuery::default());
        assert_eq!(q.sort().to_string(), "-created_at");
        assert_eq!(q.limit(), 50);
    }

    #[test]
    fn each_bad_value_is_named() {
        assert_eq!(fields("status=done"), ["status"]);
        assert_eq!(fields("limit=0"), ["limit"]);
        assert_eq!(fields("limit=101"), ["limit"]);
        assert_eq!(fields("limit=ten"), ["limit"]);
        assert_eq!(fields("sort=colour"), ["sort"]);
        assert_eq!(fields("sort=--title"), ["sort"]);
        assert_eq!(fields("priority=low,urgent"), ["priority"]);
        assert_eq!(fields("priority=low,"), ["priority"]);
        assert_eq!(fields("due_before=2026-02-30"), ["due_before"]);
        assert_eq!(fields("due_after=soon"), ["due_after"]);
        assert_eq!(fields("cursor=abc"), ["cursor"]);
        assert_eq!(fields(&format!("q={}", "a".repeat(201))), ["q"]);
    }

    #[test]
    fn all_bad_values_are_reported_together() {
        assert_eq!(
            fields("status=done&limit=0&sort=x"),
            ["status", "limit", "sort"]
        );
    }

    #[test]
    fn unknown_parameters_are_ignored_even_when_empty() {
        assert_eq!(
            ListQuery::parse("_=123&x=&y&status=all").unwrap(),
            ListQuery::default()
        );
    }

    #[test]
    fn empty_values_are_refused_naming_the_parameter() {
        for name in PARAMETERS {
            for query in [format!("{name}="), name.to_owned(), format!("{name}=+%20")] {
                match ListQuery::parse(&query) {
                    Err(QueryError(e)) => assert_eq!(
                        e.iter()
                            .map(|e| (e.field.as_ref(), e.code))
                            .collect::<Vec<_>>(),
                        [(name, "blank")],
                        "{query}"
                    ),
                    other => panic!("{query}: {other:?}"),
                }
            }
        }
        // Also when another value of the parameter came first.
        assert_eq!(fields("status=pending&status="), ["status"]);
    }

    #[test]
    fn search_with_a_control_character_is_refused() {
        for q in ["%00", "a%00b", "%01", "a%1F", "%7F", "a%C2%80", "%C2%9F"] {
            assert_eq!(fields(&format!("q={q}")), ["q"], "{q}");
        }
        // Surrounding whitespace is trimmed first, as for every value.
        assert_eq!(
            ListQuery::parse("q=%0Amilk%09").unwrap().search(),
            Some("milk")
        );
    }

    #[test]
    fn search_too_long_and_with_a_control_character_reports_both() {
        let q = format!("{}%00", "a".repeat(201));
        assert_eq!(fields(&format!("q={q}")), ["q", "q"]);
    }

    #[test]
    fn cursor_with_a_control_character_in_its_text_is_refused() {
        let q = ListQuery::parse("sort=title").unwrap();
        let cursor = q.cursor_after(&task(4, "ok", None));
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
        let head = raw.strip_suffix("ok").unwrap();
        for text in [
            "\u{0}",
            "o\u{0}k",
            "\u{1b}[2J",
            "\u{7f}",
            "\u{85}",
            "\u{9b}",
        ] {
            let forged = URL_SAFE_NO_PAD.encode(format!("{head}{text}"));
            assert_eq!(
                fields(&format!("sort=title&cursor={forged}")),
                ["cursor"],
                "{text:?}"
            );
        }
        let forged = URL_SAFE_NO_PAD.encode(format!("{head}o|k"));
        assert!(ListQuery::parse(&format!("sort=title&cursor={forged}")).is_ok());
    }

    #[test]
    fn search_is_percent_decoded_and_lower_cased() {
        let q = ListQuery::parse("q=Caf%C3%A9+MILK").unwrap();
        assert_eq!(q.search(), Some("café milk"));
    }

    #[test]
    fn cursor_round_trips_for_every_sort() {
        let t = task(7, "Héllo|World", Some("2026-12-01"));
        for key in [
            "created_at",
            "updated_at",
            "title",
            "priority",
            "due_date",
            "-due_date",
        ] {
            let q = ListQuery::parse(&format!("sort={key}")).unwrap();
            let cursor = q.cursor_after(&t);
            let next = ListQuery::parse(&format!("sort={key}&cursor={cursor}")).unwrap();
            let pos = next.after().unwrap();
            assert_eq!(
                (pos.id, &pos.value),
                (t.id, &q.sort().key.value_of(&t)),
                "{key}"
            );
        }
    }

    #[test]
    fn query_string_round_trips_with_every_filter_and_a_cursor() {
        let t = task(9, "Zed|x", Some("2026-03-04"));
        for sort in ["title", "-due_date", "priority", "-updated_at"] {
            let base = format!(
                "status=pending&priority=low,high&q=a%25b&due_after=2026-01-01&due_before=2026-12-31&sort={sort}&limit=7"
            );
            let first = ListQuery::parse(&base).unwrap();
            let q = ListQuery::parse(&format!("{base}&cursor={}", first.cursor_after(&t))).unwrap();
            assert_eq!(ListQuery::parse(&q.to_query_string()).unwrap(), q, "{sort}");
        }
    }

    #[test]
    fn cursor_for_a_task_without_due_date_round_trips() {
        let t = task(3, "x", None);
        let q = ListQuery::parse("sort=due_date").unwrap();
        let next =
            ListQuery::parse(&format!("sort=due_date&cursor={}", q.cursor_after(&t))).unwrap();
        assert_eq!(next.after().unwrap().value, SortValue::Date(None));
    }

    #[test]
    fn cursor_is_refused_for_another_filter_or_sort() {
        let t = task(1, "x", None);
        let cursor = ListQuery::parse("status=pending").unwrap().cursor_after(&t);
        assert_eq!(
            fields(&format!("status=completed&cursor={cursor}")),
            ["cursor"]
        );
        assert_eq!(
            fields(&format!("status=pending&sort=title&cursor={cursor}")),
            ["cursor"]
        );
        // A different page size is the same query.
        assert!(ListQuery::parse(&format!("status=pending&limit=5&cursor={cursor}")).is_ok());
    }

    #[test]
    fn missing_due_dates_sort_last_in_both_directions() {
        let (a, b, none) = (
            task(1, "a", Some("2026-01-01")),
            task(2, "b", Some("2026-06-01")),
            task(3, "c", None),
        );
        for s in ["due_date", "-due_date"] {
            let sort = Sort::parse(s).unwrap();
            let mut v = [&none, &b, &a];
            v.sort_by(|x, y| sort.compare_tasks(x, y));
            assert_eq!(v.last().unwrap().id, none.id, "{s}");
        }
    }

    #[test]
    fn ties_are_broken_by_id_in_the_sort_direction() {
        let (a, b) = (task(1, "same", None), task(2, "SAME", None));
        assert_eq!(
            Sort::parse("title").unwrap().compare_tasks(&a, &b),
            Ordering::Less
        );
        assert_eq!(
            Sort::parse("-title").unwrap().compare_tasks(&a, &b),
            Ordering::Greater
        );
    }

    #[test]
    fn due_range_is_inclusive_and_excludes_undated_tasks() {
        let q = ListQuery::parse("due_after=2026-01-01&due_before=2026-01-31").unwrap();
        assert!(q.matches(&task(1, "x", Some("2026-01-01"))));
        assert!(q.matches(&task(1, "x", Some("2026-01-31"))));
        assert!(!q.matches(&task(1, "x", Some("2026-02-01"))));
        assert!(!q.matches(&task(1, "x", None)));
    }
}
