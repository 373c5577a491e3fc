//! Placeholder until the Markdown renderer lands: text escaped into a paragraph.

/// `text` as safe HTML.
pub fn render(text: &str) -> String {
    format!("<p>{}</p>", maud::html! { (text) }.into_string())
}
