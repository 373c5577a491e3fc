//! The node that accepted an operation is gone for good before it delivered: a peer
//! that received the operation delivers its events once its standby lease runs out.

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    CONVERGE, Receiver, cluster, create_hook, deliverer, event, get, hook_id, payload, post,
};
use crate::gitutil::create_repo;
use crate::harness::{Signal, eventually, free_port};

#[test]
fn a_peer_takes_over_the_events_of_a_node_gone_for_good() {
    //  A <── B   (B bootstraps from A); A accepts the issues, then dies for good
    let (mut a, b, alice) = cluster(deliverer().env("GUTS_WEBHOOK_TAKEOVER_SECS", "6"));
    create_repo(&a, &alice, "orphaned", false);
    let repo = "alice/orphaned";
    // Nothing listens yet: A's attempts fail and wait for a retry.
    let port = free_port();
    let hook = create_hook(
        &a,
        &alice,
        repo,
        &format!("http://127.0.0.1:{port}/hook"),
        &["issues"],
    );
    let id = hook_id(&hook);
    eventually(CONVERGE, "the hook to reach B", || {
        (get(&b, &alice, &format!("/repos/{repo}/hooks/{id}")).0 == 200).then_some(())
    });
    let mut numbers = Vec::new();
    for n in 0..5 {
        let (status, issue) = post(
            &a,
            &alice,
            &format!("/repos/{repo}/issues"),
            json!({"title": format!("orphan {n}")}),
        );
        assert_eq!(status, 201, "{issue}");
        numbers.push(issue["number"].as_u64().unwrap());
    }
    eventually(CONVERGE, "the issues to reach B", || {
        let (_, list) = get(&b, &alice, &format!("/repos/{repo}/issues?per_page=100"));
        (list.as_array().map_or(0, Vec::len) == numbers.len()).then_some(())
    });
    a.signal(Signal::SIGKILL);
    assert!(
        a.wait_exit(Duration::from_secs(5)).is_some(),
        "A survived kill -9"
    );

    // A never comes back; B, which saw it go, delivers what A had accepted.
    let receiver = Receiver::start_on(port, 0);
    let got = receiver.wait_within(
        Duration::from_secs(40),
        "B to deliver A's events",
        |r: &[Value]| {
            numbers.iter().all(|n| {
                r.iter().any(|d| {
                    event(d) == "issues" && payload(d)["issue"]["number"].as_u64() == Some(*n)
                })
            })
        },
    );
    assert!(got.iter().all(|d| d["signature_ok"] == true));
    let (status, items) = get(&b, &alice, &format!("/repos/{repo}/hooks/{id}/deliveries"));
    assert_eq!(status, 200, "{items}");
    assert!(
        items
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["event"] == "issues")),
        "B lists the deliveries it took over: {items}"
    );
}
