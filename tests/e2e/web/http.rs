//! The web interface over plain HTTP, as a browser without JavaScript would use it:
//! a client that keeps cookies itself and never follows redirects (so tests see the
//! 303s and `Set-Cookie`s), and just enough HTML reading to find an element by id,
//! its text and a form's hidden `_csrf` value.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::TestNode;

/// One answer of the node, read whole.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) what: String,
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Page {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` of a redirect as a path (an absolute URL loses its origin).
    pub(crate) fn location(&self) -> Option<String> {
        let to = self.header("location")?;
        let path = match to.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
            None => to,
        };
        Some(path.to_string())
    }

    /// Every `Set-Cookie` line.
    pub(crate) fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The answer, shortened, for failure messages.
    pub(crate) fn describe(&self) -> String {
        let body: String = self.body.chars().take(1500).collect();
        format!(
            "{}: {} {:?}\n{body}",
            self.what,
            self.status,
            self.headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                .collect::<Vec<_>>()
        )
    }

    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> &Page {
        assert_eq!(self.status, status, "{}", self.describe());
        self
    }

    /// An HTML page (not JSON) whose `<main>` has class `error-page`, with an `<h1>`.
    #[track_caller]
    pub(crate) fn expect_error_page(&self, status: u16) {
        self.expect(status);
        let kind = self.header("content-type").unwrap_or_default();
        assert!(
            kind.starts_with("text/html"),
            "an error page is HTML, got {kind:?}: {}",
            self.describe()
        );
        let main = find_tag(&self.body, |t| {
            t.name == "main" && t.has_class("error-page")
        });
        assert!(
            main.is_some(),
            "no <main class=\"error-page\">: {}",
            self.describe()
        );
        assert!(
            find_tag(&self.body, |t| t.name == "h1").is_some(),
            "no <h1> with the reason: {}",
            self.describe()
        );
    }

    /// The text of `#current-user` (who the page says is signed in).
    pub(crate) fn current_user(&self) -> Option<String> {
        text_of_id(&self.body, "current-user")
    }

    /// The `_csrf` value of the form with id `form`; fails if there is none.
    #[track_caller]
    pub(crate) fn csrf(&self, form: &str) -> String {
        form_csrf(&self.body, form)
            .unwrap_or_else(|| panic!("no form#{form} with a _csrf input: {}", self.describe()))
    }
}

/// A browser-like client of one node (change `base` to present the same cookies to
/// another node, as a browser does for every port of 127.0.0.1).
#[derive(Debug)]
pub(crate) struct WebClient {
    http: reqwest::blocking::Client,
    pub(crate) base: String,
    pub(crate) cookies: BTreeMap<String, String>,
}

impl WebClient {
    pub(crate) fn new(node: &TestNode) -> WebClient {
        WebClient {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: node.url(""),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, page: &Page) {
        for line in page.set_cookies() {
            let pair = line.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let lower = line.to_ascii_lowercase();
            let expired = lower.contains("max-age=0")
                || lower.contains("max-age=-")
                || lower.contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    fn send(&mut self, what: String, request: reqwest::blocking::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header("Cookie", self.cookie_header());
        }
        let r = request
            .send()
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let page = Page {
            what,
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().unwrap_or_default(),
        };
        self.keep_cookies(&page);
        page
    }

    pub(crate) fn get(&mut self, path: &str) -> Page {
        let url = format!("{}{path}", self.base);
        let request = self.http.get(&url);
        self.send(format!("GET {url}"), request)
    }

    /// A form post (`application/x-www-form-urlencoded`) with extra headers.
    pub(crate) fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.post(&url).form(form);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(format!("POST {url}"), request)
    }

    /// A same-origin form post (the `Origin` a browser sends).
    pub(crate) fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post(path, form, &[("Origin", &origin)])
    }

    /// Signs in through the login form; asserts the 303 and the session cookie.
    #[track_caller]
    pub(crate) fn sign_in(&mut self, login: &str, password: &str) {
        let form = self.get("/login");
        form.expect(200);
        let token = form.csrf("login-form");
        let done = self.submit(
            "/login",
            &[("login", login), ("password", password), ("_csrf", &token)],
        );
        assert_eq!(done.status, 303, "signing in: {}", done.describe());
        assert_eq!(done.location().as_deref(), Some("/"), "{}", done.describe());
        assert!(
            self.cookies.contains_key("guts_session"),
            "no guts_session cookie after signing in: {}",
            done.describe()
        );
        let home = self.get("/");
        assert_eq!(
            home.current_user().as_deref(),
            Some(login),
            "{}",
            home.describe()
        );
    }

    /// Who `/` says is signed in with the cookies held.
    pub(crate) fn who(&mut self) -> Option<String> {
        let home = self.get("/");
        assert_eq!(home.status, 200, "{}", home.describe());
        home.current_user()
    }
}

// ---- Reading HTML (enough for pages the node renders) ----

/// An opening tag: its name (lower case), attributes (names lower case, values with
/// entities decoded) and where it ends in the text.
#[derive(Debug)]
pub(crate) struct Tag {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) end: usize,
}

impl Tag {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
    }
}

/// Every opening tag of `html`, in order.
pub(crate) fn tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off + 1;
        i = start;
        if start >= bytes.len() || !bytes[start].is_ascii_alphabetic() {
            continue;
        }
        let mut j = start;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-') {
            j += 1;
        }
        let name = html[start..j].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while j < bytes.len() && (bytes[j].is_ascii_whitespace() || bytes[j] == b'/') {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] == b'>' {
                break;
            }
            let key_start = j;
            while j < bytes.len() && !b" \t\r\n=>/".contains(&bytes[j]) {
                j += 1;
            }
            let key = html[key_start..j].to_ascii_lowercase();
            let mut value = String::new();
            if j < bytes.len() && bytes[j] == b'=' {
                j += 1;
                if j < bytes.len() && (bytes[j] == b'"' || bytes[j] == b'\'') {
                    let quote = bytes[j];
                    let value_start = j + 1;
                    j = value_start;
                    while j < bytes.len() && bytes[j] != quote {
                        j += 1;
                    }
                    value = decode_entities(&html[value_start..j.min(bytes.len())]);
                    j += 1;
                } else {
                    let value_start = j;
                    while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                        j += 1;
                    }
                    value = decode_entities(&html[value_start..j]);
                }
            }
            if key.is_empty() {
                j += 1;
            } else {
                attrs.push((key, value));
            }
        }
        let end = (j + 1).min(bytes.len());
        out.push(Tag { name, attrs, end });
        i = end;
    }
    out
}

pub(crate) fn find_tag(html: &str, pick: impl Fn(&Tag) -> bool) -> Option<Tag> {
    tags(html).into_iter().find(|t| pick(t))
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&#x27;` and numeric references.
pub(crate) fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text inside the element with id `id` (up to its closing tag, inner tags
/// dropped, whitespace trimmed).
pub(crate) fn text_of_id(html: &str, id: &str) -> Option<String> {
    let tag = find_tag(html, |t| t.attr("id") == Some(id))?;
    let rest = &html[tag.end..];
    let close = rest.find(&format!("</{}", tag.name)).unwrap_or(rest.len());
    let mut text = String::new();
    let mut inside = false;
    for c in rest[..close].chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => text.push(c),
            _ => {}
        }
    }
    Some(decode_entities(text.trim()))
}

/// The `_csrf` input's value of the form with id `form`.
pub(crate) fn form_csrf(html: &str, form: &str) -> Option<String> {
    let all = tags(html);
    let at = all
        .iter()
        .position(|t| t.name == "form" && t.attr("id") == Some(form))?;
    let form_end = html[all[at].end..]
        .find("</form")
        .map_or(html.len(), |e| all[at].end + e);
    all[at + 1..]
        .iter()
        .take_while(|t| t.end <= form_end)
        .find(|t| t.name == "input" && t.attr("name") == Some("_csrf"))
        .and_then(|t| t.attr("value").map(str::to_string))
        .filter(|v| !v.is_empty())
}

#[test]
fn the_html_reader_finds_ids_classes_and_csrf_values() {
    let html = r#"<!doctype html><header><a id=home href="/">Guts</a>
        <span id="current-user">al&amp;ice</span></header>
        <main class="page error-page"><h1>Not Found</h1>
        <form id='other'><input name="_csrf" value="nope"></form>
        <form method="post" id="new-repo-form"><input type="hidden" name="_csrf" value="t&#x2F;k=="/>
        <input name=name></form></main>"#;
    assert_eq!(text_of_id(html, "current-user").as_deref(), Some("al&ice"));
    assert_eq!(form_csrf(html, "new-repo-form").as_deref(), Some("t/k=="));
    assert_eq!(form_csrf(html, "other").as_deref(), Some("nope"));
    assert_eq!(form_csrf(html, "missing"), None);
    assert!(find_tag(html, |t| t.name == "main" && t.has_class("error-page")).is_some());
    assert!(find_tag(html, |t| t.name == "main" && t.has_class("page-x")).is_none());
    assert_eq!(
        find_tag(html, |t| t.attr("id") == Some("home"))
            .and_then(|t| t.attr("href").map(str::to_string)),
        Some("/".to_string())
    );
}
