//! Times the markup of the web interface in release (the page benchmark,
//! scripts/bench-web.py, measures whole pages): highlighting 5,000 lines of Rust,
//! rendering a 100 KiB README, and the adversarial Markdown inputs at the size cap.
//! Each figure is the fastest of several runs (the machine may be shared).
//!
//! `cargo run --release -p guts-web --example markup_timing`

use std::time::{Duration, Instant};

use guts_web::markup::{adversarial, highlight, markdown};

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let source = include_str!("../src/markup/highlight.rs");
    let mut text = String::new();
    while text.lines().count() < 5_000 {
        text.push_str(source);
    }
    let text: String = text.lines().take(5_000).flat_map(|l| [l, "\n"]).collect();
    let took = best(20, || {
        std::hint::black_box(highlight::highlight("x.rs", &text));
    });
    println!(
        "highlight: 5,000 lines ({} KiB of Rust) in {took:?}",
        text.len() / 1024
    );

    let readme = include_str!("../../../README.md");
    let mut doc = String::new();
    while doc.len() < 100 * 1024 {
        doc.push_str(readme);
        doc.push('\n');
    }
    let took = best(5, || {
        std::hint::black_box(markdown::render(&doc));
    });
    println!("markdown: {} KiB README in {took:?}", doc.len() / 1024);
    for (name, input) in adversarial::markdown_inputs() {
        let took = best(3, || {
            std::hint::black_box(markdown::render(&input));
        });
        println!("markdown {name}: {} KiB in {took:?}", input.len() / 1024);
    }
}
