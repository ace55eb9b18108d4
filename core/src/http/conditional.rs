//! Conditional requests: reading `If-Match` and `If-None-Match` into entity tags (a 400
//! naming the header when one cannot be read). Which version a tag names is the domain's
//! ([`Version::from_etag`]); what the store then checks is the task routes'.

use http::{HeaderMap, header};

use crate::domain::ids::Version;
use crate::http::error::ApiError;

/// Whether `If-None-Match` matches `version` (weak comparison), so a 304 is due.
pub(crate) fn if_none_match(headers: &HeaderMap, version: Version) -> Result<bool, ApiError> {
    let Some(tags) = entity_tags(headers, header::IF_NONE_MATCH)? else {
        return Ok(false);
    };
    Ok(tags.iter().any(|t| {
        t == "*" || Version::from_etag(t.strip_prefix("W/").unwrap_or(t)) == Some(version)
    }))
}

/// The entity tags of a conditional header, or `None` if it is absent. A value that is not
/// `*` or a list of quoted tags is a 400 naming the header.
pub(crate) fn entity_tags(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<Vec<String>>, ApiError> {
    let label = if name == header::IF_MATCH {
        "If-Match"
    } else {
        "If-None-Match"
    };
    let mut tags = Vec::new();
    let mut seen = false;
    for value in headers.get_all(&name) {
        seen = true;
        let value = value.to_str().map_err(|_| ApiError::InvalidHeader(label))?;
        tags.extend(tags_of(value).ok_or(ApiError::InvalidHeader(label))?);
    }
    if seen && tags.is_empty() {
        return Err(ApiError::InvalidHeader(label));
    }
    Ok(seen.then_some(tags))
}

/// The entity tags of one header value (`*`, or quoted tags separated by commas), or `None`
/// when one is not well formed.
pub(crate) fn tags_of(value: &str) -> Option<Vec<String>> {
    let mut tags = Vec::new();
    for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let opaque = tag.strip_prefix("W/").unwrap_or(tag);
        let well_formed = tag == "*"
            || (opaque.len() >= 2
                && opaque.starts_with('"')
                && opaque.ends_with('"')
                && !opaque[1..opaque.len() - 1].contains('"'));
        if !well_formed {
            return None;
        }
        tags.push(tag.to_owned());
    }
    Some(tags)
}
