//! Hostile or careless hook input gets GitHub's 422 (or 404), never a 500, and never a
//! hook: bad content types, `insecure_ssl` values, event names, oversized URLs,
//! secrets and event lists, a 21st hook, unknown hook and delivery ids, bodies that
//! are not JSON.

use serde_json::{Value, json};

use super::{get, patch, post};
use crate::gitutil::create_repo;
use crate::harness::{TestNode, client, create_user};

#[test]
fn bad_hook_input_is_refused_with_githubs_errors() {
    let node = TestNode::start();
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "strict", false);
    let r = "/repos/alice/strict/hooks";
    let url = "https://93.184.215.14/hook";
    let config = |extra: Value| {
        let mut c = json!({"url": url, "content_type": "json"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    };
    let long = "x".repeat(3000);
    let cases = [
        json!({"config": config(json!({"content_type": "xml"})), "active": false}),
        json!({"config": config(json!({"insecure_ssl": "yes"})), "active": false}),
        json!({"config": config(json!({"insecure_ssl": 2})), "active": false}),
        json!({"config": config(json!({"secret": "s".repeat(257)})), "active": false}),
        json!({"config": config(json!({"url": format!("https://example.com/{long}")})), "active": false}),
        json!({"config": config(json!({})), "events": ["push", "Bad Event!"], "active": false}),
        json!({"config": config(json!({})), "events": vec!["push"; 65].iter().enumerate().map(|(i, _)| format!("e{i}")).collect::<Vec<_>>(), "active": false}),
        json!({"name": "email", "config": config(json!({})), "active": false}),
        json!({"config": {"content_type": "json"}, "active": false}),
    ];
    for body in cases {
        let (status, answer) = post(&node, &alice, r, body.clone());
        assert_eq!(status, 422, "{body} -> {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    let (status, list) = get(&node, &alice, r);
    assert_eq!((status, list), (200, json!([])), "no hook was made");

    // Not JSON at all.
    let resp = client()
        .post(node.url(&format!("/api/v3{r}")))
        .header("Authorization", format!("token {alice}"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());

    // Twenty hooks, then no more.
    for n in 0..20 {
        let (status, answer) = post(
            &node,
            &alice,
            r,
            json!({"config": {"url": format!("{url}/{n}"), "content_type": "json"}, "active": false}),
        );
        assert_eq!(status, 201, "{answer}");
    }
    let (status, answer) = post(
        &node,
        &alice,
        r,
        json!({"config": {"url": url, "content_type": "json"}, "active": false}),
    );
    assert_eq!(status, 422, "{answer}");

    // Unknown ids.
    for path in [
        format!("{r}/1"),
        format!("{r}/1/deliveries"),
        format!("{r}/1/config"),
        format!("{r}/not-a-number"),
    ] {
        let (status, answer) = get(&node, &alice, &path);
        assert!(
            status == 404 || status == 400 || status == 422,
            "{path}: {status} {answer}"
        );
        assert_ne!(status, 500);
    }
    let (status, _) = patch(&node, &alice, &format!("{r}/1"), json!({"active": true}));
    assert_eq!(status, 404);
    let (_, list) = get(&node, &alice, r);
    let first = list[0]["id"].as_u64().unwrap();
    let (status, _) = get(&node, &alice, &format!("{r}/{first}/deliveries/12345"));
    assert_eq!(status, 404);
    let (status, _) = post(
        &node,
        &alice,
        &format!("{r}/{first}/deliveries/12345/attempts"),
        json!({}),
    );
    assert_eq!(status, 404);
}
