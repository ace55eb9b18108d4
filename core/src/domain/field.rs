//! One problem with one field, and what counts as a control character: the vocabulary every
//! parser of the domain reports in, whichever boundary (a body, a query, a path) the text
//! came through.

use std::borrow::Cow;

use serde::Serialize;

/// One problem with one field (or query parameter), as listed in a problem's `errors`.
///
/// ```
/// use task_api_core::FieldError;
/// let e = FieldError::new("title", "blank", "title must not be blank");
/// assert_eq!(serde_json::to_value(&e).unwrap()["code"], "blank");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field or parameter name.
    pub field: Cow<'static, str>,
    /// A stable machine code (`blank`, `too_long`, `unknown_field`, …).
    pub code: &'static str,
    /// A human sentence.
    pub message: Cow<'static, str>,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Whether `c` is a control character: the one definition for every text a request brings
/// (titles, descriptions, `q`, cursors, user ids, emails). It is Unicode category Cc: C0
/// (U+0000 to U+001F, NUL included), DEL (U+007F) and C1 (U+0080 to U+009F). C1 characters
/// are refused like C0 ones: they are invisible, terminals act on some of them (U+009B is
/// CSI), and no text a person types needs them. PostgreSQL refuses NUL in text outright, so
/// none of these ever reaches a store.
pub(crate) fn is_control(c: char) -> bool {
    c.is_control()
}

/// Whether `s` holds a control character ([`is_control`]).
pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(is_control)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_c0_del_and_c1() {
        for c in [
            '\0', '\t', '\n', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
        ] {
            assert!(is_control(c), "{c:?}");
        }
        for c in [' ', '~', '\u{a0}', '\u{200b}', '\u{2028}', 'é'] {
            assert!(!is_control(c), "{c:?}");
        }
        assert!(has_control("a\u{0}b") && !has_control("a b"));
    }
}
