//! The operation encoder's size and count caps as GitHub's 422 "Validation Failed".
//!
//! Every mutation becomes a signed operation, and the encoder refuses values above the
//! caps a decoder enforces (`guts_core::codec` and `guts_core::collab`): more than
//! [`MAX_ASSIGNEES`] assignees, a review with more than `MAX_REVIEW_COMMENTS`
//! comments, a path over `MAX_NAME_BYTES`… Such a request is the client's mistake, not
//! the server's, so it must be a 422 naming the resource and the field, never a 500.
//!
//! The use cases check the caps first with guts-service's `check_count` and
//! `check_bytes`, which take the core constants (one definition of each cap: the limit
//! the API states is the one the encoder applies). [`encode_error`] is the backstop for whatever the edge does not
//! check (the 1 MiB size of a whole operation, say): it maps an [`EncodeError`] to the
//! same 422, with the resource of the payload that failed ([`resource_of`]).

use guts_core::EncodeError;

pub(crate) use guts_core::collab::{MAX_ASSIGNEES, MAX_LABEL_BYTES};

use crate::error::{ApiError, FieldError};

/// 422 `invalid` on `resource.field` with a message stating the limit.
fn too_big(resource: &'static str, field: &'static str, message: String) -> ApiError {
    ApiError::validation(FieldError {
        resource: resource.into(),
        field: field.into(),
        code: "invalid".into(),
        message: Some(message),
    })
}

/// The API's name of a field the encoder named.
fn api_field(field: &'static str) -> &'static str {
    match field {
        "ref name" => "ref",
        "label" => "name",
        other => other,
    }
}

/// An [`EncodeError`] of a payload of `resource` as the client's 422. Only the
/// failures no request can cause stay 500: a signing key that is not the author, and
/// more parents than an operation may name (the node picks the parents).
pub(crate) fn encode_error(resource: &'static str, error: &EncodeError) -> ApiError {
    match error {
        EncodeError::FieldTooLong { field, max, .. } => {
            // A review comment's path lives in the comments of the review.
            let resource = match (resource, *field) {
                ("PullRequestReview", "path") => "PullRequestReviewComment",
                _ => resource,
            };
            too_big(
                resource,
                api_field(field),
                format!("is too long (maximum is {max} bytes)"),
            )
        }
        EncodeError::TooManyItems { field, max, found } if *field != "parents" => too_big(
            resource,
            api_field(field),
            format!("has too many items (maximum is {max}, found {found})"),
        ),
        EncodeError::TooLarge { max, found } => ApiError::validation(FieldError {
            resource: resource.into(),
            field: String::new().into(),
            code: "custom".into(),
            message: Some(format!(
                "the change is {found} bytes once encoded, more than the limit of {max}"
            )),
        }),
        EncodeError::TooManyItems { .. } | EncodeError::WrongKey => {
            tracing::error!(error = %error, "operation could not be encoded");
            ApiError::internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guts_core::codec::MAX_NAME_BYTES;
    use guts_core::codec::MAX_OP_BYTES;

    #[test]
    fn every_client_cap_is_a_422_naming_the_field() {
        let cases = [
            (
                "Issue",
                EncodeError::TooManyItems {
                    field: "assignees",
                    max: MAX_ASSIGNEES,
                    found: 11,
                },
                "Issue",
                "assignees",
            ),
            (
                "PullRequestReview",
                EncodeError::FieldTooLong {
                    field: "path",
                    max: MAX_NAME_BYTES,
                    found: 2000,
                },
                "PullRequestReviewComment",
                "path",
            ),
            (
                "Ref",
                EncodeError::FieldTooLong {
                    field: "ref name",
                    max: MAX_NAME_BYTES,
                    found: 2000,
                },
                "Ref",
                "ref",
            ),
            (
                "PullRequestReview",
                EncodeError::TooLarge {
                    max: MAX_OP_BYTES,
                    found: MAX_OP_BYTES + 1,
                },
                "PullRequestReview",
                "",
            ),
        ];
        for (resource, error, want_resource, want_field) in cases {
            let e = encode_error(resource, &error);
            assert_eq!(e.status(), 422, "{error}");
            assert_eq!(e.message(), "Validation Failed");
            assert_eq!(e.errors()[0].resource, want_resource);
            assert_eq!(e.errors()[0].field, want_field);
        }
        let parents = EncodeError::TooManyItems {
            field: "parents",
            max: 64,
            found: 65,
        };
        assert_eq!(encode_error("Issue", &parents).status(), 500);
        assert_eq!(encode_error("Issue", &EncodeError::WrongKey).status(), 500);
    }
}

/// The caps through the router: each class answers 422 naming its resource and field
/// before anything is signed.
#[cfg(test)]
mod api_tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_support::TestApp;
    use guts_core::collab::MAX_REVIEW_COMMENTS;

    fn field_error(body: &Value) -> (&str, &str, &str) {
        let e = &body["errors"][0];
        (
            e["resource"].as_str().unwrap_or(""),
            e["field"].as_str().unwrap_or(""),
            e["code"].as_str().unwrap_or(""),
        )
    }

    async fn app_with_repo() -> (TestApp, String) {
        let app = TestApp::new(Default::default());
        let alice = app.user("alice").await;
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/user/repos",
                Some(&alice),
                Some(json!({"name": "r"})),
            )
            .await;
        assert_eq!(res.status(), 201, "{body}");
        (app, alice)
    }

    #[tokio::test]
    async fn eleven_assignees_are_a_422_not_a_500() {
        let (app, alice) = app_with_repo().await;
        let mut logins = vec!["alice".to_string()];
        for i in 1..=MAX_ASSIGNEES {
            let login = format!("user{i}");
            app.user(&login).await;
            logins.push(login);
        }
        let issue = json!({"title": "t", "assignees": logins});
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/issues",
                Some(&alice),
                Some(issue),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(body["message"], "Validation Failed");
        assert_eq!(field_error(&body), ("Issue", "assignees", "invalid"));
        assert!(body["documentation_url"].is_string(), "{body}");

        // The same cap on the assignees endpoint, and ten (the cap) is fine.
        let ten = &logins[..MAX_ASSIGNEES];
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/issues",
                Some(&alice),
                Some(json!({"title": "t", "assignees": ten})),
            )
            .await;
        assert_eq!(res.status(), 201, "{body}");
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/issues/1/assignees",
                Some(&alice),
                Some(json!({"assignees": logins})),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(field_error(&body), ("Issue", "assignees", "invalid"));
    }

    #[tokio::test]
    async fn review_comment_count_and_path_length_are_422s() {
        let (app, alice) = app_with_repo().await;
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let comment = json!({"path": "a.txt", "line": 1, "body": "x"});
        let many = vec![comment; MAX_REVIEW_COMMENTS + 1];
        let review = json!({"event": "COMMENT", "commit_id": sha, "body": "b", "comments": many});
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/pulls/1/reviews",
                Some(&alice),
                Some(review),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(
            field_error(&body),
            ("PullRequestReview", "comments", "invalid")
        );

        let long_path = "p/".repeat(1000);
        let comment = json!({"commit_id": sha, "path": long_path, "line": 1, "body": "x"});
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/pulls/1/comments",
                Some(&alice),
                Some(comment),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(
            field_error(&body),
            ("PullRequestReviewComment", "path", "invalid")
        );
    }

    #[tokio::test]
    async fn label_names_are_capped_in_bytes() {
        let (app, alice) = app_with_repo().await;
        // 50 characters (GitHub's limit) of four bytes each: over the 100-byte cap.
        let wide = "\u{1F600}".repeat(50);
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/labels",
                Some(&alice),
                Some(json!({"name": wide, "color": "ff0000"})),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(field_error(&body), ("Label", "name", "invalid"));
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/repos/alice/r/issues",
                Some(&alice),
                Some(json!({"title": "t", "labels": [wide]})),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(field_error(&body), ("Label", "name", "invalid"));
    }

    #[tokio::test]
    async fn default_branches_git_refuses_are_422s() {
        let app = TestApp::new(Default::default());
        let alice = app.user("alice").await;
        for (i, branch) in ["HEAD", "-x", "a..b", "x.lock"].into_iter().enumerate() {
            let repo = json!({"name": format!("r{i}"), "default_branch": branch});
            let (res, body) = app
                .call("POST", "/api/v3/user/repos", Some(&alice), Some(repo))
                .await;
            assert_eq!(res.status(), 422, "{branch}: {body}");
            assert_eq!(
                field_error(&body),
                ("Repository", "default_branch", "invalid"),
                "{branch}"
            );
        }
        let repo = json!({"name": "ok", "default_branch": "trunk"});
        let (res, body) = app
            .call("POST", "/api/v3/user/repos", Some(&alice), Some(repo))
            .await;
        assert_eq!(res.status(), 201, "{body}");
        assert_eq!(body["default_branch"], "trunk");
    }
}
