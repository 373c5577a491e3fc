//! A delivery joins the trace of the request whose operation caused it: the outbox
//! keeps the request's traceparent, and the attempt's span continues it, however
//! much later the deliverer gets to it.

use serde_json::json;

use super::{Receiver, create_hook, deliverer, event, post};
use crate::gitutil::create_repo;
use crate::harness::{SpanSink, TestNode, create_user};

#[test]
fn a_delivery_continues_the_trace_of_the_request_that_caused_it() {
    let sink = SpanSink::start();
    let mut node = TestNode::start_with(deliverer().env("GUTS_OTLP_ENDPOINT", &sink.endpoint));
    let alice = create_user(&node, "alice");
    create_repo(&node, &alice, "traced", false);
    let receiver = Receiver::start(0);
    create_hook(&node, &alice, "alice/traced", &receiver.url(), &["issues"]);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = crate::harness::client()
        .post(node.url("/api/v3/repos/alice/traced/issues"))
        .header("Authorization", format!("token {alice}"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({ "title": "traced" }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    receiver.wait("the issue's event", |r| {
        r.iter().any(|d| event(d) == "issues")
    });
    // An untraced request's delivery is in no such trace.
    let (status, _) = post(
        &node,
        &alice,
        "/repos/alice/traced/issues",
        json!({"title": "plain"}),
    );
    assert_eq!(status, 201);
    assert!(node.stop().success());

    let in_trace = sink.names_in_trace(trace_id, &["request", "webhook_delivery"]);
    for name in ["request", "webhook_delivery"] {
        assert!(
            in_trace.iter().any(|s| s == name),
            "no {name} span in the request's trace: {in_trace:?}"
        );
    }
    assert_eq!(
        in_trace.iter().filter(|s| *s == "webhook_delivery").count(),
        1,
        "only the traced request's delivery joins its trace: {in_trace:?}"
    );
}
