//! The HTTP contract (docs/contract.md), one function per behaviour, over any
//! [`Transport`]: the core in process (`core/tests/contract.rs`), the served component
//! (`tests/spin-host/tests/contract_http.rs`), or any other server.
//!
//! Each function takes `start`, which starts a fresh service (empty storage) with the given
//! settings (Spin variable names, e.g. `cors_origins`; `jwt_secret` is [`SECRET`] unless
//! given) and returns a transport to it. [`contract_tests!`](crate::contract_tests) turns
//! every function into one `#[test]`.
//!
//! Nothing here assumes id values or their order: ids are random.
//!
//! [`SECRET`]: crate::SECRET

use http::Request;
use serde_json::{Value, json};

use crate::{Reply, Transport, token_at};

// The sync routes' behaviours (docs/sync.md), listed by `contract_tests!` with the rest.
pub use crate::contract_sync::*;

/// How a behaviour starts a fresh service with the given settings.
pub type Start<'a, T> = &'a dyn Fn(&[(&str, &str)]) -> T;

/// Generates one `#[test]` per behaviour of [`contract`](crate::contract), each on a fresh
/// service from `$start`, a `fn(&[(&str, &str)]) -> impl Transport` (or a closure).
/// With `if $ready` (a `fn() -> bool`), each test first asks it and returns at once when it
/// says no (e.g. a database that is unreachable while skipping is allowed).
#[macro_export]
macro_rules! contract_tests {
    (@each $start:expr, $ready:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if !($ready)() {
                    return;
                }
                $crate::contract::$name(&$start);
            }
        )*
    };
    ($start:expr) => {
        $crate::contract_tests!($start, if || true);
    };
    ($start:expr, if $ready:expr) => {
        $crate::contract_tests!(@each $start, $ready;
            health_is_ok_without_auth,
            ready_is_ok_when_the_store_answers,
            openapi_document_is_served_without_auth,
            unknown_route_is_404_problem,
            wrong_method_is_405_with_allow,
            head_answers_like_get_without_a_body,
            options_without_origin_lists_the_allowed_methods,
            missing_token_is_401_without_error_attribute,
            malformed_token_is_401_invalid_token,
            expired_token_is_401_invalid_token,
            token_signed_with_another_secret_is_401,
            bad_tokens_are_401_with_the_bearer_challenge,
            path_user_other_than_the_token_is_403,
            path_user_equal_to_the_token_is_served,
            percent_encoded_path_user_is_compared_decoded,
            token_whose_sub_has_a_control_character_is_401,
            path_user_that_is_not_a_user_id_is_400_naming_user_id,
            create_returns_201_with_location_etag_and_the_task,
            created_task_has_every_field_of_the_contract,
            create_defaults_to_medium_pending_without_description_or_due_date,
            create_completed_sets_completed_at,
            create_location_follows_the_base_used,
            create_ignores_server_owned_fields,
            create_with_unknown_field_is_422_naming_it,
            validation_problem_lists_every_field_error,
            single_field_error_is_the_detail,
            create_without_json_content_type_is_415,
            json_content_type_with_charset_is_accepted,
            malformed_json_is_400,
            nul_in_title_or_description_is_422_naming_the_field,
            body_over_64_kib_is_413,
            get_returns_the_task_with_its_etag,
            get_with_matching_if_none_match_is_304,
            id_that_is_not_a_positive_64_bit_integer_is_404,
            task_that_does_not_exist_is_404,
            patch_changes_only_the_fields_sent,
            put_is_a_partial_update_too,
            update_moves_updated_at_and_the_etag,
            update_with_no_changeable_field_is_422,
            update_with_null_title_priority_or_completed_is_422,
            update_with_null_description_and_due_date_clears_them,
            update_of_completed_sets_and_clears_completed_at,
            stale_if_match_is_412_and_changes_nothing,
            current_if_match_succeeds,
            if_match_star_and_lists_are_understood,
            malformed_if_match_is_400_naming_the_header,
            complete_without_body_toggles_and_stamps_completed_at,
            complete_with_empty_object_toggles,
            complete_with_a_boolean_sets_it,
            toggle_status_is_an_alias_of_complete,
            complete_with_other_fields_is_422,
            delete_is_204_and_the_task_is_gone,
            clear_completed_deletes_only_completed_tasks_and_counts_them,
            delete_of_the_collection_without_status_completed_is_400,
            list_envelope_has_total_limit_and_next_cursor,
            list_defaults_to_newest_first,
            list_filters_by_status,
            list_filters_by_several_priorities,
            list_searches_title_and_description_case_insensitively,
            search_treats_sql_wildcards_literally,
            list_filters_by_inclusive_due_range,
            total_counts_every_match_not_only_the_page,
            sort_by_priority_is_by_rank_not_by_name,
            tasks_without_due_date_sort_last_both_ways,
            sort_by_title_ignores_case_and_breaks_ties_by_id,
            paging_visits_every_task_once_under_every_sort,
            paging_is_stable_while_tasks_are_added,
            bad_list_parameters_are_400_naming_each,
            empty_list_parameter_is_400_naming_it,
            unknown_parameters_are_ignored_even_when_empty,
            search_with_a_control_character_is_400_naming_q,
            cursor_with_a_control_character_in_its_title_is_400_naming_cursor,
            cursor_from_another_query_is_400,
            other_users_task_is_404_on_every_route,
            other_users_tasks_are_never_listed_counted_or_cleared,
            path_naming_another_user_is_403_on_every_route,
            cursor_of_another_user_reveals_nothing,
            retry_with_the_same_idempotency_key_returns_the_first_task,
            same_idempotency_key_with_another_body_is_422,
            idempotency_keys_are_per_user,
            invalid_idempotency_key_is_400,
            idempotency_key_with_a_control_character_is_400,
            preflight_from_an_allowed_origin_is_204_with_cors_headers,
            disallowed_origin_gets_no_cors_headers,
            response_to_an_allowed_origin_exposes_etag_location_and_request_id,
            errors_to_an_allowed_origin_carry_cors_headers_too,
            trailing_slash_is_ignored_not_redirected,
            user_named_tasks_uses_the_token_scoped_base,
            // sync (docs/sync.md): crate::contract_sync
            feed_without_since_returns_every_live_task_as_upserts,
            feed_of_nothing_is_empty_with_a_next_token,
            feed_after_delete_returns_a_tombstone,
            feed_shows_a_task_changed_several_times_once_in_its_latest_state,
            feed_never_repeats_a_change_already_returned,
            feed_next_token_picks_up_only_later_changes,
            feed_limit_pages_with_has_more,
            feed_limit_outside_1_to_1000_is_400_naming_limit,
            feed_with_a_forged_since_is_400_naming_since,
            feed_token_ahead_of_the_database_is_410_sync_reset,
            feed_token_from_another_database_is_410_sync_reset,
            feed_is_scoped_to_the_token_user,
            feed_under_every_base,
            feed_shows_cleared_completed_tasks_as_tombstones,
            feed_replica_equals_the_listing_once_drained,
            batch_applies_every_operation_in_order,
            batch_with_a_stale_if_match_applies_nothing_and_names_the_index,
            batch_naming_another_users_task_is_404_and_applies_nothing,
            batch_validation_lists_every_problem_with_paths,
            batch_validation_comes_before_any_operation_is_tried,
            batch_over_100_operations_is_422,
            batch_empty_is_422,
            batch_body_is_json_of_at_most_64_kib,
            batch_create_with_idempotency_key_replays,
            batch_create_reusing_a_key_with_another_body_is_422,
            batch_with_an_invalid_idempotency_key_is_422_naming_it,
            batch_unknown_op_is_422,
            batch_update_with_unknown_field_is_422,
            batch_result_tasks_carry_new_versions,
            batch_if_match_takes_the_header_syntax,
            batch_changes_share_one_position_in_the_feed,
            export_streams_ndjson_one_task_per_line,
            export_csv_with_accept_text_csv,
            export_content_type_follows_accept,
            export_with_unacceptable_accept_is_406,
            export_is_scoped_to_the_token_user,
            export_of_no_tasks_is_empty,
            import_ndjson_creates_tasks_keeping_times_and_new_ids,
            import_fills_in_updated_at_and_completed_at,
            import_reads_any_rfc3339_time_and_renders_it_in_utc,
            import_csv_creates_tasks,
            import_of_an_export_round_trips,
            import_of_a_csv_export_round_trips,
            import_with_a_bad_record_imports_nothing_and_names_records_i,
            import_csv_bad_row_is_named_without_counting_the_header,
            import_with_idempotency_key_replays_without_importing_again,
            import_key_reused_with_another_body_is_422,
            import_with_wrong_content_type_is_415,
            import_creates_show_in_the_feed,
            import_over_10000_records_is_refused,
            batch_export_and_import_are_served_under_every_base,
            sync_routes_need_a_token_and_the_path_user,
        );
    };
}

// ---------------------------------------------------------------- service routes

pub fn health_is_ok_without_auth<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.call("GET", "/health", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "ok");
    assert_eq!(r.json["version"], env!("CARGO_PKG_VERSION"));
}

pub fn ready_is_ok_when_the_store_answers<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call("GET", "/health/ready", None, None);
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "ok", "database": "ok"}))
    );
}

pub fn openapi_document_is_served_without_auth<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call("GET", "/openapi.json", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json["openapi"], "3.1.0");
    assert!(r.json["paths"]["/api/{user_id}/tasks"]["get"].is_object());
}

pub fn unknown_route_is_404_problem<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call("GET", "/nope", Some("u1"), None);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json["status"], 404);
}

pub fn wrong_method_is_405_with_allow<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.call("PUT", "/api/tasks", Some("u1"), None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST, DELETE, OPTIONS"));
    let r = app.call("GET", "/api/tasks/1/complete", Some("u1"), None);
    assert_eq!((r.status, r.header("allow")), (405, Some("PATCH, OPTIONS")));
}

pub fn head_answers_like_get_without_a_body<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call("HEAD", "/health", None, None);
    assert_eq!(r.status, 200);
    assert!(r.raw.body().is_empty());
}

pub fn options_without_origin_lists_the_allowed_methods<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call("OPTIONS", "/api/u1/tasks/5", None, None);
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("allow"),
        Some("GET, HEAD, PUT, PATCH, DELETE, OPTIONS")
    );
}

// ---------------------------------------------------------------- authentication

pub fn missing_token_is_401_without_error_attribute<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call("GET", "/api/tasks", None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"tasks\""));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

pub fn malformed_token_is_401_invalid_token<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.call_with(
        "GET",
        "/api/tasks",
        None,
        None,
        &[("authorization", "Bearer not.a.jwt")],
    );
    assert_eq!(r.status, 401);
    let h = r.header("www-authenticate").unwrap();
    assert!(
        h.starts_with("Bearer ")
            && h.contains("error=\"invalid_token\"")
            && h.contains("error_description=")
    );
}

pub fn expired_token_is_401_invalid_token<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let old = token_at("u1", (app.now_ms() / 1000) as u64 - 3600 - 61);
    let r = app.call_with(
        "GET",
        "/api/tasks",
        None,
        None,
        &[("authorization", &format!("Bearer {old}"))],
    );
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains("expired"));
}

pub fn token_signed_with_another_secret_is_401<T: Transport>(start: Start<'_, T>) {
    use jwt_simple::prelude::*;
    let app = start(&[]);
    let claims = Claims::create(Duration::from_hours(1)).with_subject("u1");
    let forged = HS256Key::from_bytes(b"some other secret of 32 bytes or more")
        .authenticate(claims)
        .unwrap();
    let r = app.call_with(
        "GET",
        "/api/tasks",
        None,
        None,
        &[("authorization", &format!("Bearer {forged}"))],
    );
    assert_eq!(r.status, 401);
}

pub fn bad_tokens_are_401_with_the_bearer_challenge<T: Transport>(start: Start<'_, T>) {
    use jwt_simple::prelude::*;
    let app = start(&[]);
    let now = (app.now_ms() / 1000) as u64;
    let key = HS256Key::from_bytes(crate::SECRET.as_bytes());
    let claims = |iat: u64, nbf: u64, exp: Option<u64>, sub: &str| {
        let mut c = Claims::create(Duration::from_hours(1)).with_subject(sub);
        c.issued_at = Some(Duration::from_secs(iat));
        c.invalid_before = Some(Duration::from_secs(nbf));
        c.expires_at = exp.map(Duration::from_secs);
        c
    };
    let b64 = |s: &str| Base64UrlSafeNoPadding::encode_to_string(s).unwrap();
    let cases = [
        (
            "expired",
            key.authenticate(claims(now - 7200, now - 7200, Some(now - 3600), "u1"))
                .unwrap(),
        ),
        (
            "not yet valid",
            key.authenticate(claims(now, now + 600, Some(now + 3600), "u1"))
                .unwrap(),
        ),
        (
            "no exp",
            key.authenticate(claims(now, now, None, "u1")).unwrap(),
        ),
        (
            "empty sub",
            key.authenticate(claims(now, now, Some(now + 60), ""))
                .unwrap(),
        ),
        (
            "HS512",
            HS512Key::from_bytes(crate::SECRET.as_bytes())
                .authenticate(claims(now, now, Some(now + 60), "u1"))
                .unwrap(),
        ),
        (
            "another secret",
            HS256Key::from_bytes(b"not the secret, though long enough!!")
                .authenticate(claims(now, now, Some(now + 60), "u1"))
                .unwrap(),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(r#"{"sub":"u1","exp":9999999999}"#)
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, token) in cases {
        let r = app.call_with(
            "GET",
            "/api/tasks",
            None,
            None,
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(r.status, 401, "{name}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{name}: {challenge}"
        );
    }
}

pub fn path_user_other_than_the_token_is_403<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for path in ["/api/u2/tasks", "/api/v1/u2/tasks"] {
        let r = app.call("GET", path, Some("u1"), None);
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (403, json!("forbidden")),
            "{path}"
        );
    }
}

pub fn path_user_equal_to_the_token_is_served<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    assert_eq!(
        app.call("GET", "/api/u1/tasks", Some("u1"), None).status,
        200
    );
    assert_eq!(
        app.call("GET", "/api/v1/u1/tasks", Some("u1"), None).status,
        200
    );
}

pub fn percent_encoded_path_user_is_compared_decoded<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    assert_eq!(
        app.call(
            "GET",
            "/api/ann%40example.com/tasks",
            Some("ann@example.com"),
            None
        )
        .status,
        200
    );
}

pub fn token_whose_sub_has_a_control_character_is_401<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for sub in ["u\u{0}1", "u\u{1b}1", "u\u{7f}", "u\u{85}1", "\u{9b}u"] {
        let r = app.call("GET", "/api/tasks", Some(sub), None);
        assert_eq!(r.status, 401, "{sub:?}");
        let h = r.header("www-authenticate").unwrap();
        assert!(h.contains("error=\"invalid_token\""), "{sub:?}: {h}");
        assert!(h.contains("sub"), "{sub:?}: {h}");
    }
}

pub fn path_user_that_is_not_a_user_id_is_400_naming_user_id<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let long = "u".repeat(129);
    // NUL, another C0 control, DEL, C1 controls, bytes that are not UTF-8, too long.
    for user in [
        "u%001",
        "u%1B1",
        "u%7F",
        "u%C2%80",
        "u%C2%9F1",
        "u%FF",
        long.as_str(),
    ] {
        for base in ["/api", "/api/v1"] {
            let path = format!("{base}/{user}/tasks");
            let r = app.call("GET", &path, Some("u1"), None);
            assert_eq!(
                (r.status, r.json["code"].clone()),
                (400, json!("invalid_parameter")),
                "{path:.40}"
            );
            let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
            assert_eq!(fields, ["user_id"], "{path:.40}");
        }
    }
}

// ---------------------------------------------------------------- create

pub fn create_returns_201_with_location_etag_and_the_task<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.create("u1", json!({"title": "Buy milk", "description": "2 litres", "priority": "high", "due_date": "2026-12-01"}));
    let t = r.task();
    assert_eq!(t["title"], "Buy milk");
    assert_eq!(t["description"], "2 litres");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["due_date"], "2026-12-01");
    assert_eq!(t["user_id"], "u1");
    assert_eq!(t["completed"], false);
    assert_eq!(t["completed_at"], Value::Null);
    assert_eq!(t["created_at"], t["updated_at"]);
    assert_eq!(
        r.header("location"),
        Some(format!("/api/tasks/{}", r.id()).as_str())
    );
    assert_eq!(r.header("etag"), Some("\"v1\""));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

pub fn created_task_has_every_field_of_the_contract<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).create("u1", json!({"title": "x"}));
    let keys: Vec<&String> = r.task().as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "completed",
            "completed_at",
            "created_at",
            "description",
            "due_date",
            "id",
            "priority",
            "title",
            "updated_at",
            "user_id"
        ]
    );
}

pub fn create_defaults_to_medium_pending_without_description_or_due_date<T: Transport>(
    start: Start<'_, T>,
) {
    let r = start(&[]).create("u1", json!({"title": "x"}));
    assert_eq!(r.task()["priority"], "medium");
    assert_eq!(r.task()["completed"], false);
    assert_eq!(r.task()["description"], Value::Null);
    assert_eq!(r.task()["due_date"], Value::Null);
}

pub fn create_completed_sets_completed_at<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).create("u1", json!({"title": "x", "completed": true}));
    assert_eq!(r.task()["completed_at"], r.task()["created_at"]);
}

pub fn create_location_follows_the_base_used<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for base in ["/api", "/api/v1", "/api/u1", "/api/v1/u1"] {
        let r = app.call(
            "POST",
            &format!("{base}/tasks"),
            Some("u1"),
            Some(json!({"title": "x"})),
        );
        assert_eq!(
            r.header("location"),
            Some(format!("{base}/tasks/{}", r.id()).as_str())
        );
    }
}

pub fn create_ignores_server_owned_fields<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).create(
        "u1",
        json!({"title": "x", "id": 999, "user_id": "u2", "created_at": "2000-01-01T00:00:00.000Z", "updated_at": 1, "completed_at": null}),
    );
    assert_ne!(r.id(), 999);
    assert_eq!(r.task()["user_id"], "u1");
    assert_ne!(r.task()["created_at"], "2000-01-01T00:00:00.000Z");
}

pub fn create_with_unknown_field_is_422_naming_it<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "x", "colour": "red"})),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.field_errors(),
        [("colour".into(), "unknown_field".into())]
    );
}

pub fn validation_problem_lists_every_field_error<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "x".repeat(201), "priority": "urgent", "due_date": "2026-02-30"})),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json["code"], "validation_failed");
    assert_eq!(r.json["title"], "Validation failed");
    assert_eq!(r.json["status"], 422);
    assert!(
        r.json["type"]
            .as_str()
            .unwrap()
            .ends_with("validation_failed")
    );
    assert!(r.json["detail"].is_string());
    assert_eq!(r.json["request_id"], r.header("x-request-id").unwrap());
    assert_eq!(
        r.field_errors(),
        [
            ("due_date".into(), "invalid_date".into()),
            ("priority".into(), "invalid_value".into()),
            ("title".into(), "too_long".into())
        ]
    );
}

pub fn single_field_error_is_the_detail<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "x".repeat(201)})),
    );
    assert_eq!(r.json["detail"], "title must be 1 to 200 characters");
}

pub fn create_without_json_content_type_is_415<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let req = Request::post("/api/tasks")
        .header("authorization", format!("Bearer {}", app.token("u1")))
        .header("content-type", "text/plain")
        .body(br#"{"title":"x"}"#.to_vec())
        .unwrap();
    assert_eq!(app.send(req).status, 415);
    let req = Request::post("/api/tasks")
        .header("authorization", format!("Bearer {}", app.token("u1")))
        .body(br#"{"title":"x"}"#.to_vec())
        .unwrap();
    assert_eq!(app.send(req).status, 415);
}

pub fn json_content_type_with_charset_is_accepted<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let req = Request::post("/api/tasks")
        .header("authorization", format!("Bearer {}", app.token("u1")))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(br#"{"title":"x"}"#.to_vec())
        .unwrap();
    assert_eq!(app.send(req).status, 201);
}

pub fn malformed_json_is_400<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for body in [&b"{\"title\":"[..], b"[1,2]", b"", b"\"x\""] {
        let req = Request::post("/api/tasks")
            .header("authorization", format!("Bearer {}", app.token("u1")))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .unwrap();
        let r = app.send(req);
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (400, json!("malformed_body")),
            "{body:?}"
        );
    }
}

pub fn nul_in_title_or_description_is_422_naming_the_field<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let body = json!({"title": "a\u{0}b", "description": "c\u{0}d"});
    let r = app.call("POST", "/api/tasks", Some("u1"), Some(body.clone()));
    assert_eq!(r.status, 422);
    let mut errors = r.field_errors();
    errors.sort();
    let expected = [
        ("description".to_owned(), "control_character".to_owned()),
        ("title".to_owned(), "control_character".to_owned()),
    ];
    assert_eq!(errors, expected);
    let id = app.create("u1", json!({"title": "ok"})).id();
    let r = app.call("PATCH", &format!("/api/tasks/{id}"), Some("u1"), Some(body));
    let mut errors = r.field_errors();
    errors.sort();
    assert_eq!((r.status, errors), (422, expected.to_vec()));
    assert_eq!(app.list("u1", "").json["data"][0]["title"], "ok");
}

pub fn body_over_64_kib_is_413<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let body = json!({"title": "x", "description": "d".repeat(70_000)});
    let r = app.call("POST", "/api/tasks", Some("u1"), Some(body));
    assert_eq!(r.status, 413);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

// ---------------------------------------------------------------- get

pub fn get_returns_the_task_with_its_etag<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let created = app.create("u1", json!({"title": "x"}));
    let r = app.call(
        "GET",
        &format!("/api/tasks/{}", created.id()),
        Some("u1"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.task(), created.task());
    assert_eq!(r.header("etag"), created.header("etag"));
}

pub fn get_with_matching_if_none_match_is_304<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let created = app.create("u1", json!({"title": "x"}));
    let etag = created.header("etag").unwrap();
    let path = format!("/api/tasks/{}", created.id());
    let r = app.call_with("GET", &path, Some("u1"), None, &[("if-none-match", etag)]);
    assert_eq!(r.status, 304);
    assert!(r.raw.body().is_empty());
    assert_eq!(r.header("etag"), Some(etag));
    let weak = format!("W/{etag}");
    assert_eq!(
        app.call_with("GET", &path, Some("u1"), None, &[("if-none-match", &weak)])
            .status,
        304
    );
    let r = app.call_with(
        "GET",
        &path,
        Some("u1"),
        None,
        &[("if-none-match", "\"v9\"")],
    );
    assert_eq!(r.status, 200);
}

pub fn id_that_is_not_a_positive_64_bit_integer_is_404<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for id in [
        "0",
        "-1",
        "abc",
        "1.5",
        "9223372036854775808",
        "99999999999999999999",
    ] {
        let r = app.call("GET", &format!("/api/tasks/{id}"), Some("u1"), None);
        assert_eq!(r.status, 404, "{id}");
    }
}

pub fn task_that_does_not_exist_is_404<T: Transport>(start: Start<'_, T>) {
    assert_eq!(
        start(&[])
            .call("GET", "/api/tasks/12345", Some("u1"), None)
            .status,
        404
    );
}

// ---------------------------------------------------------------- update

pub fn patch_changes_only_the_fields_sent<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create(
        "u1",
        json!({"title": "a", "description": "d", "priority": "low", "due_date": "2026-12-01"}),
    );
    let r = app.call(
        "PATCH",
        &format!("/api/tasks/{}", c.id()),
        Some("u1"),
        Some(json!({"title": "b"})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.task()["title"], "b");
    for f in [
        "description",
        "priority",
        "due_date",
        "completed",
        "created_at",
    ] {
        assert_eq!(r.task()[f], c.task()[f], "{f}");
    }
}

pub fn put_is_a_partial_update_too<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a", "priority": "high"}));
    let r = app.call(
        "PUT",
        &format!("/api/tasks/{}", c.id()),
        Some("u1"),
        Some(json!({"description": "new"})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.task()["title"].clone(), r.task()["priority"].clone()),
        (json!("a"), json!("high"))
    );
    assert_eq!(r.task()["description"], "new");
}

pub fn update_moves_updated_at_and_the_etag<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    app.let_time_pass(10);
    let r = app.call(
        "PATCH",
        &format!("/api/tasks/{}", c.id()),
        Some("u1"),
        Some(json!({"priority": "low"})),
    );
    assert!(r.task()["updated_at"].as_str().unwrap() > c.task()["updated_at"].as_str().unwrap());
    assert_ne!(r.header("etag"), c.header("etag"));
}

pub fn update_with_no_changeable_field_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    for body in [json!({}), json!({"id": 5, "created_at": "x"})] {
        let r = app.call(
            "PATCH",
            &format!("/api/tasks/{}", c.id()),
            Some("u1"),
            Some(body),
        );
        assert_eq!(r.status, 422);
        assert_eq!(r.field_errors()[0].1, "no_changes");
    }
}

pub fn update_with_null_title_priority_or_completed_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    for field in ["title", "priority", "completed"] {
        let r = app.call(
            "PATCH",
            &format!("/api/tasks/{}", c.id()),
            Some("u1"),
            Some(json!({ field: null })),
        );
        assert_eq!(r.status, 422, "{field}");
    }
}

pub fn update_with_null_description_and_due_date_clears_them<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create(
        "u1",
        json!({"title": "a", "description": "d", "due_date": "2026-12-01"}),
    );
    let r = app.call(
        "PATCH",
        &format!("/api/tasks/{}", c.id()),
        Some("u1"),
        Some(json!({"description": null, "due_date": null})),
    );
    assert_eq!(
        (
            r.task()["description"].clone(),
            r.task()["due_date"].clone()
        ),
        (Value::Null, Value::Null)
    );
}

pub fn update_of_completed_sets_and_clears_completed_at<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}", c.id());
    let done = app.call("PATCH", &path, Some("u1"), Some(json!({"completed": true})));
    assert_eq!(done.task()["completed_at"], done.task()["updated_at"]);
    let again = app.call("PATCH", &path, Some("u1"), Some(json!({"completed": true})));
    assert_eq!(
        again.task()["completed_at"],
        done.task()["completed_at"],
        "already completed: kept"
    );
    let undone = app.call(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"completed": false})),
    );
    assert_eq!(undone.task()["completed_at"], Value::Null);
}

pub fn stale_if_match_is_412_and_changes_nothing<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}", c.id());
    let stale = c.header("etag").unwrap().to_owned();
    app.call("PATCH", &path, Some("u1"), Some(json!({"title": "b"})));
    let r = app.call_with(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"title": "c"})),
        &[("if-match", &stale)],
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (412, json!("precondition_failed"))
    );
    let r = app.call_with("DELETE", &path, Some("u1"), None, &[("if-match", &stale)]);
    assert_eq!(r.status, 412);
    let r = app.call_with(
        "PATCH",
        &format!("{path}/complete"),
        Some("u1"),
        None,
        &[("if-match", &stale)],
    );
    assert_eq!(r.status, 412);
    let now = app.call("GET", &path, Some("u1"), None);
    assert_eq!(
        (now.task()["title"].clone(), now.task()["completed"].clone()),
        (json!("b"), json!(false))
    );
}

pub fn current_if_match_succeeds<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}", c.id());
    let r = app.call_with(
        "PUT",
        &path,
        Some("u1"),
        Some(json!({"title": "b"})),
        &[("if-match", c.header("etag").unwrap())],
    );
    assert_eq!(r.status, 200);
    let r = app.call_with(
        "DELETE",
        &path,
        Some("u1"),
        None,
        &[("if-match", r.header("etag").unwrap())],
    );
    assert_eq!(r.status, 204);
}

pub fn if_match_star_and_lists_are_understood<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}", c.id());
    let r = app.call_with(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"title": "b"})),
        &[("if-match", "*")],
    );
    assert_eq!(r.status, 200);
    let list = format!("\"v1\", {}", r.header("etag").unwrap());
    let r = app.call_with(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"title": "c"})),
        &[("if-match", &list)],
    );
    assert_eq!(r.status, 200);
    let r = app.call_with(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"title": "d"})),
        &[("if-match", "\"v1\", \"v2\"")],
    );
    assert_eq!(r.status, 412);
    let r = app.call_with(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"title": "d"})),
        &[("if-match", "W/\"v3\"")],
    );
    assert_eq!(r.status, 412, "weak tags never match If-Match");
}

pub fn malformed_if_match_is_400_naming_the_header<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let r = app.call_with(
        "PATCH",
        &format!("/api/tasks/{}", c.id()),
        Some("u1"),
        Some(json!({"title": "b"})),
        &[("if-match", "v1")],
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (400, json!("invalid_header"))
    );
    assert!(r.json["detail"].as_str().unwrap().contains("If-Match"));
}

// ---------------------------------------------------------------- completion

pub fn complete_without_body_toggles_and_stamps_completed_at<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}/complete", c.id());
    let on = app.call("PATCH", &path, Some("u1"), None);
    assert_eq!(on.status, 200);
    assert_eq!(on.task()["completed"], true);
    assert_eq!(on.task()["completed_at"], on.task()["updated_at"]);
    assert!(on.header("etag").is_some());
    let off = app.call("PATCH", &path, Some("u1"), None);
    assert_eq!(
        (
            off.task()["completed"].clone(),
            off.task()["completed_at"].clone()
        ),
        (json!(false), Value::Null)
    );
}

pub fn complete_with_empty_object_toggles<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let r = app.call(
        "PATCH",
        &format!("/api/tasks/{}/complete", c.id()),
        Some("u1"),
        Some(json!({})),
    );
    assert_eq!(r.task()["completed"], true);
}

pub fn complete_with_a_boolean_sets_it<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}/complete", c.id());
    for _ in 0..2 {
        let r = app.call("PATCH", &path, Some("u1"), Some(json!({"completed": true})));
        assert_eq!(r.task()["completed"], true);
    }
    let r = app.call(
        "PATCH",
        &path,
        Some("u1"),
        Some(json!({"completed": false})),
    );
    assert_eq!(r.task()["completed"], false);
}

pub fn toggle_status_is_an_alias_of_complete<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let r = app.call(
        "PATCH",
        &format!("/api/u1/tasks/{}/toggle-status", c.id()),
        Some("u1"),
        None,
    );
    assert_eq!(
        (r.status, r.task()["completed"].clone()),
        (200, json!(true))
    );
}

pub fn complete_with_other_fields_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let r = app.call(
        "PATCH",
        &format!("/api/tasks/{}/complete", c.id()),
        Some("u1"),
        Some(json!({"title": "x"})),
    );
    assert_eq!(r.status, 422);
}

// ---------------------------------------------------------------- delete

pub fn delete_is_204_and_the_task_is_gone<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let path = format!("/api/tasks/{}", c.id());
    let r = app.call("DELETE", &path, Some("u1"), None);
    assert_eq!(r.status, 204);
    assert!(r.raw.body().is_empty());
    assert_eq!(app.call("GET", &path, Some("u1"), None).status, 404);
    assert_eq!(app.call("DELETE", &path, Some("u1"), None).status, 404);
}

pub fn clear_completed_deletes_only_completed_tasks_and_counts_them<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    app.create("u1", json!({"title": "a", "completed": true}));
    app.create("u1", json!({"title": "b", "completed": true}));
    let keep = app.create("u1", json!({"title": "c"}));
    let r = app.call("DELETE", "/api/tasks?status=completed", Some("u1"), None);
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"data": {"deleted": 2}}))
    );
    assert_eq!(app.page_through("u1", "limit=10"), [keep.id()]);
}

pub fn delete_of_the_collection_without_status_completed_is_400<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u1", json!({"title": "a", "completed": true}));
    for path in [
        "/api/tasks",
        "/api/tasks?status=all",
        "/api/tasks?status=pending",
    ] {
        let r = app.call("DELETE", path, Some("u1"), None);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.field_errors()[0].0, "status");
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 1);
}

// ---------------------------------------------------------------- list

pub fn list_envelope_has_total_limit_and_next_cursor<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for i in 0..3 {
        app.create("u1", json!({"title": format!("t{i}")}));
    }
    let r = app.list("u1", "limit=2");
    assert_eq!(r.json["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["meta"]["total"], 3);
    assert_eq!(r.json["meta"]["limit"], 2);
    assert!(r.json["meta"]["next_cursor"].is_string());
    let r = app.list("u1", "");
    assert_eq!(
        r.json["meta"],
        json!({"total": 3, "limit": 50, "next_cursor": null})
    );
}

pub fn list_defaults_to_newest_first<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let ids: Vec<i64> = (0..3)
        .map(|i| app.create("u1", json!({"title": format!("t{i}")})).id())
        .collect();
    let listed = app.page_through("u1", "");
    assert_eq!(listed, ids.into_iter().rev().collect::<Vec<_>>());
}

pub fn list_filters_by_status<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let done = app
        .create("u1", json!({"title": "a", "completed": true}))
        .id();
    let open = app.create("u1", json!({"title": "b"})).id();
    assert_eq!(app.page_through("u1", "status=completed"), [done]);
    assert_eq!(app.page_through("u1", "status=pending"), [open]);
    assert_eq!(app.list("u1", "status=all").json["meta"]["total"], 2);
}

pub fn list_filters_by_several_priorities<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let low = app
        .create("u1", json!({"title": "a", "priority": "low"}))
        .id();
    app.create("u1", json!({"title": "b", "priority": "medium"}));
    let high = app
        .create("u1", json!({"title": "c", "priority": "high"}))
        .id();
    assert_eq!(
        app.page_through("u1", "priority=low,high&sort=priority"),
        [low, high]
    );
}

pub fn list_searches_title_and_description_case_insensitively<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "Buy MILK"})).id();
    let b = app
        .create(
            "u1",
            json!({"title": "x", "description": "oat milk please"}),
        )
        .id();
    app.create("u1", json!({"title": "bread"}));
    let mut found = app.page_through("u1", "q=Milk");
    found.sort();
    assert_eq!(found, [a.min(b), a.max(b)]);
}

pub fn search_treats_sql_wildcards_literally<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let pct = app.create("u1", json!({"title": "100% done"})).id();
    app.create("u1", json!({"title": "100 done"}));
    let under = app.create("u1", json!({"title": "a_b"})).id();
    app.create("u1", json!({"title": "axb"}));
    assert_eq!(app.page_through("u1", "q=100%25"), [pct]);
    assert_eq!(app.page_through("u1", "q=a_b"), [under]);
}

pub fn list_filters_by_inclusive_due_range<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app
        .create("u1", json!({"title": "a", "due_date": "2026-01-01"}))
        .id();
    let b = app
        .create("u1", json!({"title": "b", "due_date": "2026-01-31"}))
        .id();
    app.create("u1", json!({"title": "c", "due_date": "2026-02-01"}));
    app.create("u1", json!({"title": "d"}));
    assert_eq!(
        app.page_through(
            "u1",
            "due_after=2026-01-01&due_before=2026-01-31&sort=due_date"
        ),
        [a, b]
    );
}

pub fn total_counts_every_match_not_only_the_page<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for i in 0..5 {
        app.create(
            "u1",
            json!({"title": format!("t{i}"), "priority": if i % 2 == 0 { "high" } else { "low" }}),
        );
    }
    assert_eq!(
        app.list("u1", "priority=high&limit=1").json["meta"]["total"],
        3
    );
}

pub fn sort_by_priority_is_by_rank_not_by_name<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let m = app
        .create("u1", json!({"title": "a", "priority": "medium"}))
        .id();
    let h = app
        .create("u1", json!({"title": "b", "priority": "high"}))
        .id();
    let l = app
        .create("u1", json!({"title": "c", "priority": "low"}))
        .id();
    assert_eq!(app.page_through("u1", "sort=priority"), [l, m, h]);
    assert_eq!(app.page_through("u1", "sort=-priority"), [h, m, l]);
}

pub fn tasks_without_due_date_sort_last_both_ways<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let none = app.create("u1", json!({"title": "a"})).id();
    let early = app
        .create("u1", json!({"title": "b", "due_date": "2026-01-01"}))
        .id();
    let late = app
        .create("u1", json!({"title": "c", "due_date": "2027-01-01"}))
        .id();
    assert_eq!(app.page_through("u1", "sort=due_date"), [early, late, none]);
    assert_eq!(
        app.page_through("u1", "sort=-due_date"),
        [late, early, none]
    );
}

pub fn sort_by_title_ignores_case_and_breaks_ties_by_id<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let b = app.create("u1", json!({"title": "banana"})).id();
    let a1 = app.create("u1", json!({"title": "Apple"})).id();
    let a2 = app.create("u1", json!({"title": "apple"})).id();
    // Ids are random: the tie between the two apples goes to the smaller id.
    let (lo, hi) = (a1.min(a2), a1.max(a2));
    assert_eq!(app.page_through("u1", "sort=title"), [lo, hi, b]);
    assert_eq!(app.page_through("u1", "sort=-title"), [b, hi, lo]);
}

pub fn paging_visits_every_task_once_under_every_sort<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let prios = ["low", "medium", "high"];
    let mut all = Vec::new();
    for i in 0..23 {
        let mut body = json!({"title": format!("t{}", i % 4), "priority": prios[i % 3]});
        if i % 5 != 0 {
            body["due_date"] = json!(format!("2026-0{}-1{}", 1 + i % 3, i % 2));
        }
        all.push(app.create("u1", body).id());
        if i % 7 == 0 {
            app.call(
                "PATCH",
                &format!("/api/tasks/{}/complete", all[i]),
                Some("u1"),
                None,
            );
        }
    }
    all.sort();
    for sort in [
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "title",
        "-title",
        "priority",
        "-priority",
        "due_date",
        "-due_date",
    ] {
        for limit in [1, 4, 100] {
            let mut ids = app.page_through("u1", &format!("sort={sort}&limit={limit}"));
            assert_eq!(ids.len(), 23, "{sort} limit {limit}");
            ids.sort();
            assert_eq!(ids, all, "{sort} limit {limit}");
        }
    }
}

pub fn paging_is_stable_while_tasks_are_added<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let created: Vec<_> = (0..6)
        .map(|i| app.create("u1", json!({"title": format!("t{i}")})).id())
        .collect();
    let first = app.list("u1", "limit=3");
    let cursor = first.json["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create("u1", json!({"title": "newer"}));
    let second = app.list("u1", &format!("limit=3&cursor={cursor}"));
    let ids = |r: &Reply| {
        r.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    // Newest first: the page after the cursor is the three oldest, without "newer".
    let newest_first: Vec<_> = created.iter().rev().copied().collect();
    assert_eq!(ids(&first), newest_first[..3]);
    assert_eq!(ids(&second), newest_first[3..]);
}

pub fn bad_list_parameters_are_400_naming_each<T: Transport>(start: Start<'_, T>) {
    let r = start(&[]).call(
        "GET",
        "/api/tasks?status=done&limit=0&sort=colour",
        Some("u1"),
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json["code"], "invalid_parameter");
    let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["status", "limit", "sort"]);
}

pub fn empty_list_parameter_is_400_naming_it<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for name in [
        "status",
        "priority",
        "q",
        "due_before",
        "due_after",
        "sort",
        "limit",
        "cursor",
    ] {
        for query in [format!("{name}="), name.to_owned(), format!("{name}=%20+")] {
            let r = app.call("GET", &format!("/api/tasks?{query}"), Some("u1"), None);
            assert_eq!(
                (r.status, r.json["code"].clone()),
                (400, json!("invalid_parameter")),
                "{query}"
            );
            assert_eq!(
                r.field_errors(),
                [(name.to_owned(), "blank".to_owned())],
                "{query}"
            );
        }
    }
}

pub fn unknown_parameters_are_ignored_even_when_empty<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u1", json!({"title": "x"}));
    assert_eq!(
        app.list("u1", "_=&cachebuster&status=pending").json["meta"]["total"],
        1
    );
}

pub fn search_with_a_control_character_is_400_naming_q<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u1", json!({"title": "milk"}));
    // NUL, other C0 controls, DEL and C1 controls (NEL, CSI) inside the text.
    for q in [
        "%00",
        "mi%00lk",
        "a%07",
        "a%1Fb",
        "a%7F",
        "a%C2%85b",
        "%C2%9Bmilk",
    ] {
        let r = app.call("GET", &format!("/api/tasks?q={q}"), Some("u1"), None);
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (400, json!("invalid_parameter")),
            "{q}"
        );
        assert_eq!(
            r.field_errors(),
            [("q".to_owned(), "control_character".to_owned())],
            "{q}"
        );
    }
}

pub fn cursor_with_a_control_character_in_its_title_is_400_naming_cursor<T: Transport>(
    start: Start<'_, T>,
) {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = start(&[]);
    for t in ["a", "b"] {
        app.create("u1", json!({"title": t}));
    }
    let issued = app.list("u1", "limit=1&sort=title").json["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&issued).unwrap()).unwrap();
    let (head, title) = raw.rsplit_once('|').unwrap();
    assert_eq!(title, "a", "the cursor ends with the folded title");
    for forged in ["a\u{0}", "\u{7}", "a\u{7f}", "\u{9b}"] {
        let cursor = URL_SAFE_NO_PAD.encode(format!("{head}|{forged}"));
        let r = app.call(
            "GET",
            &format!("/api/tasks?limit=1&sort=title&cursor={cursor}"),
            Some("u1"),
            None,
        );
        assert_eq!(r.status, 400, "{forged:?}");
        assert_eq!(r.field_errors()[0].0, "cursor", "{forged:?}");
    }
}

pub fn cursor_from_another_query_is_400<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for i in 0..3 {
        app.create("u1", json!({"title": format!("t{i}")}));
    }
    let cursor = app.list("u1", "limit=1&sort=title").json["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.call(
        "GET",
        &format!("/api/tasks?limit=1&sort=-title&cursor={cursor}"),
        Some("u1"),
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.field_errors()[0].0, "cursor");
}

// ---------------------------------------------------------------- isolation

pub fn other_users_task_is_404_on_every_route<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let theirs = app.create("u2", json!({"title": "secret", "completed": true}));
    let id = theirs.id();
    let etag = theirs.header("etag").unwrap().to_owned();
    for base in ["/api", "/api/v1", "/api/u1", "/api/v1/u1"] {
        let item = format!("{base}/tasks/{id}");
        let attempts = [
            ("GET", item.clone(), None),
            ("PUT", item.clone(), Some(json!({"title": "pwned"}))),
            ("PATCH", item.clone(), Some(json!({"title": "pwned"}))),
            ("PATCH", format!("{item}/complete"), None),
            (
                "PATCH",
                format!("{item}/toggle-status"),
                Some(json!({"completed": false})),
            ),
            ("DELETE", item.clone(), None),
        ];
        for (method, path, body) in attempts {
            let r = app.call_with(
                method,
                &path,
                Some("u1"),
                body.clone(),
                &[("if-match", &etag)],
            );
            assert_eq!(r.status, 404, "{method} {path}");
            assert_eq!(r.json["detail"], "no such resource", "{method} {path}");
            let r = app.call(method, &path, Some("u1"), body);
            assert_eq!(r.status, 404, "{method} {path} without If-Match");
        }
    }
    let still = app.call("GET", &format!("/api/tasks/{id}"), Some("u2"), None);
    assert_eq!(still.task(), theirs.task());
}

pub fn other_users_tasks_are_never_listed_counted_or_cleared<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u2", json!({"title": "theirs milk", "completed": true}));
    app.create("u1", json!({"title": "mine"}));
    assert_eq!(app.list("u1", "q=milk").json["meta"]["total"], 0);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 1);
    let r = app.call("DELETE", "/api/tasks?status=completed", Some("u1"), None);
    assert_eq!(r.json["data"]["deleted"], 0);
    assert_eq!(app.list("u2", "").json["meta"]["total"], 1);
}

pub fn path_naming_another_user_is_403_on_every_route<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let id = app.create("u2", json!({"title": "x"})).id();
    for base in ["/api/u2", "/api/v1/u2"] {
        for (method, path) in [
            ("GET", format!("{base}/tasks")),
            ("POST", format!("{base}/tasks")),
            ("DELETE", format!("{base}/tasks?status=completed")),
            ("GET", format!("{base}/tasks/{id}")),
            ("PUT", format!("{base}/tasks/{id}")),
            ("PATCH", format!("{base}/tasks/{id}")),
            ("DELETE", format!("{base}/tasks/{id}")),
            ("PATCH", format!("{base}/tasks/{id}/complete")),
        ] {
            let r = app.call(method, &path, Some("u1"), Some(json!({"title": "x"})));
            assert_eq!(r.status, 403, "{method} {path}");
        }
    }
}

pub fn cursor_of_another_user_reveals_nothing<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for i in 0..3 {
        app.create("u2", json!({"title": format!("t{i}")}));
    }
    let cursor = app.list("u2", "limit=1").json["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.list("u1", &format!("limit=1&cursor={cursor}"));
    assert_eq!(r.json["data"], json!([]));
    assert_eq!(r.json["meta"]["total"], 0);
}

// ---------------------------------------------------------------- idempotency

pub fn retry_with_the_same_idempotency_key_returns_the_first_task<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    let body = json!({"title": "pay rent"});
    let first = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(body.clone()),
        &[("idempotency-key", "k-1")],
    );
    let again = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(body),
        &[("idempotency-key", "k-1")],
    );
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(again.json, first.json);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.list("u1", "").json["meta"]["total"], 1);
}

pub fn same_idempotency_key_with_another_body_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "a"})),
        &[("idempotency-key", "k")],
    );
    let r = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "b"})),
        &[("idempotency-key", "k")],
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("idempotency_key_reused"))
    );
    assert_eq!(app.list("u1", "").json["meta"]["total"], 1);
}

pub fn idempotency_keys_are_per_user<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "a"})),
        &[("idempotency-key", "k")],
    );
    let b = app.call_with(
        "POST",
        "/api/tasks",
        Some("u2"),
        Some(json!({"title": "a"})),
        &[("idempotency-key", "k")],
    );
    assert_ne!(a.id(), b.id());
    assert_eq!(b.task()["user_id"], "u2");
}

pub fn invalid_idempotency_key_is_400<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let r = app.call_with(
            "POST",
            "/api/tasks",
            Some("u1"),
            Some(json!({"title": "a"})),
            &[("idempotency-key", key)],
        );
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (400, json!("invalid_header")),
            "{key:.10}"
        );
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn idempotency_key_with_a_control_character_is_400<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "a"})),
        &[("idempotency-key", "k\t1")],
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (400, json!("invalid_header"))
    );
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn preflight_from_an_allowed_origin_is_204_with_cors_headers<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[("cors_origins", "https://app.example")]);
    let r = app.call_with(
        "OPTIONS",
        "/api/tasks/7",
        None,
        None,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PATCH"),
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, HEAD, PUT, PATCH, DELETE, OPTIONS")
    );
    let allowed = r.header("access-control-allow-headers").unwrap();
    for h in [
        "Authorization",
        "Content-Type",
        "If-Match",
        "If-None-Match",
        "Idempotency-Key",
        "X-Request-Id",
    ] {
        assert!(allowed.contains(h), "{h}");
    }
    assert!(r.header("access-control-max-age").is_some());
}

pub fn disallowed_origin_gets_no_cors_headers<T: Transport>(start: Start<'_, T>) {
    let app = start(&[("cors_origins", "https://app.example")]);
    let pre = app.call_with(
        "OPTIONS",
        "/api/tasks",
        None,
        None,
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    let get = app.call_with(
        "GET",
        "/api/tasks",
        Some("u1"),
        None,
        &[("origin", "https://evil.example")],
    );
    for r in [pre, get] {
        assert!(
            r.headers
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")),
            "{:?}",
            r.headers
        );
    }
}

pub fn response_to_an_allowed_origin_exposes_etag_location_and_request_id<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[("cors_origins", "*")]);
    let r = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "x"})),
        &[("origin", "http://localhost:3000")],
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let exposed = r.header("access-control-expose-headers").unwrap();
    for h in ["ETag", "Location", "X-Request-Id"] {
        assert!(exposed.contains(h), "{h}");
    }
}

pub fn errors_to_an_allowed_origin_carry_cors_headers_too<T: Transport>(start: Start<'_, T>) {
    let app = start(&[("cors_origins", "https://app.example")]);
    let r = app.call_with(
        "GET",
        "/api/tasks",
        None,
        None,
        &[("origin", "https://app.example")],
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

pub fn trailing_slash_is_ignored_not_redirected<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.call(
        "POST",
        "/api/u1/tasks/",
        Some("u1"),
        Some(json!({"title": "x"})),
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        app.call(
            "GET",
            &format!("/api/u1/tasks/{}/", r.id()),
            Some("u1"),
            None
        )
        .status,
        200
    );
}

pub fn user_named_tasks_uses_the_token_scoped_base<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = app.call(
        "POST",
        "/api/tasks",
        Some("tasks"),
        Some(json!({"title": "x"})),
    );
    assert_eq!(r.task()["user_id"], "tasks");
    let r = app.call("GET", "/api/v1/tasks", Some("v1"), None);
    assert_eq!(r.status, 200);
}
