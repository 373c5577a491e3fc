//! Organization webhooks: created by an organization admin on one node, they reach the
//! other node with the organization's record (secret sealed), and hear every event of
//! the organization's repositories; the node that accepted an operation delivers it,
//! signed with the secret it unsealed. Members who are not admins do not see them.

use serde_json::json;

use super::{
    Receiver, SECRET, assert_payloads_conform, cluster, deliverer, event, get, payload, post,
    webhooks_description,
};
use crate::gitutil::{Git, auth_url};
use crate::harness::{create_org, create_user, eventually};

#[test]
fn an_organizations_hook_hears_its_repositories_from_any_node() {
    //  A <── B   (B bootstraps from A)
    let description = webhooks_description();
    let (a, b, alice) = cluster(deliverer());
    create_org(&a, "acme", "alice");
    let bob = create_user(&a, "bob");
    let (status, body) = super::put(
        &a,
        &alice,
        "/orgs/acme/memberships/bob",
        json!({"role": "member"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&a, &alice, "/orgs/acme/repos", json!({"name": "app"}));
    assert_eq!(status, 201, "{body}");

    let receiver = Receiver::start(0);
    let (status, hook) = post(
        &a,
        &alice,
        "/orgs/acme/hooks",
        json!({"name": "web", "events": ["push", "issues"],
               "config": {"url": receiver.url(), "content_type": "json", "secret": SECRET}}),
    );
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["type"], "Organization", "{hook}");
    assert_eq!(hook["config"]["secret"], "********", "{hook}");
    let id = hook["id"].as_u64().unwrap();
    let got = receiver.wait("the ping", |r| r.iter().any(|d| event(d) == "ping"));
    let ping = got.iter().find(|d| event(d) == "ping").unwrap();
    assert_eq!(payload(ping)["hook_id"], id, "{ping}");
    assert_eq!(payload(ping)["organization"]["login"], "acme", "{ping}");
    assert_eq!(
        ping["headers"]["x-github-hook-installation-target-type"],
        "organization"
    );
    let (status, _) = get(&a, &bob, "/orgs/acme/hooks");
    assert_eq!(
        status, 404,
        "a member who is not an admin does not see the hooks"
    );

    // The hook travels with the organization's record.
    eventually(super::CONVERGE, "the hook to reach B", || {
        let (status, list) = get(&b, &alice, "/orgs/acme/hooks");
        (status == 200 && list.as_array().is_some_and(|l| l.len() == 1)).then_some(())
    });
    eventually(super::CONVERGE, "the repository to reach B", || {
        (get(&b, &alice, "/repos/acme/app").0 == 200).then_some(())
    });

    // A push accepted by B and an issue opened on A: one delivery each, signed.
    let git = Git::v(2);
    let work = tempfile::tempdir().unwrap();
    let tree = git.init(work.path(), "w");
    git.commit(&tree, &[("README.md", b"# app\n")], "Initial commit");
    git.ok(
        &tree,
        &[
            "push",
            "--quiet",
            &auth_url(&b, "alice", &alice, "acme/app"),
            "main",
        ],
    );
    let (status, issue) = post(
        &a,
        &alice,
        "/repos/acme/app/issues",
        json!({"title": "From A"}),
    );
    assert_eq!(status, 201, "{issue}");
    receiver.wait("the push and the issue", |r| {
        r.iter().any(|d| event(d) == "push") && r.iter().any(|d| event(d) == "issues")
    });
    // Long enough for a second copy from the other node to show up, were there one.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let got = receiver.requests();
    let pushes: Vec<_> = got.iter().filter(|d| event(d) == "push").collect();
    assert_eq!(
        pushes.len(),
        1,
        "one node delivers: {}",
        super::summary(&got)
    );
    assert_eq!(
        got.iter().filter(|d| event(d) == "issues").count(),
        1,
        "{}",
        super::summary(&got)
    );
    assert!(
        got.iter().all(|d| d["signature_ok"] == true),
        "{}",
        super::summary(&got)
    );
    assert_eq!(payload(pushes[0])["repository"]["full_name"], "acme/app");

    // B made the push's delivery and lists it; A made the issue's.
    let listed = |node: &crate::harness::TestNode| {
        let (status, items) = get(node, &alice, &format!("/orgs/acme/hooks/{id}/deliveries"));
        assert_eq!(status, 200, "{items}");
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["event"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(listed(&b).contains(&"push".to_string()));
    assert!(listed(&a).contains(&"issues".to_string()));

    assert_payloads_conform(&description, &receiver.record);
}
