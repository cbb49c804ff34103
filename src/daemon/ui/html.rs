//! The console's frame (header, navigation, styles) and its error pages. Markup is maud's:
//! compiled with the binary, and every value interpolated into it is escaped.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::Person;
use crate::text::thousands;

const CSS: &str = r#"
:root { --fg: #1d2433; --muted: #5b6475; --line: #d9dee7; --bg: #f6f7f9; --accent: #2454c5; --ok: #1f7a3a; --bad: #b3261e; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #fff; border-bottom: 1px solid var(--line); padding: .5rem 1.5rem; display: flex; gap: 1.25rem; align-items: center; flex-wrap: wrap; }
header .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
header .who { margin-left: auto; color: var(--muted); }
header form { display: inline; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
pre, code { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; }
pre { background: #fbfcfd; border: 1px solid var(--line); padding: .6rem .8rem; overflow-x: auto; }
.muted { color: var(--muted); }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.badge { display: inline-block; padding: 0 .4rem; border-radius: 4px; font-size: .8rem; border: 1px solid currentColor; }
button, input[type=submit] { font: inherit; padding: .25rem .8rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.quiet { background: #fff; color: var(--accent); }
input[type=text], input[type=search], select { font: inherit; padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
ul.tree { list-style: none; padding-left: 1.2rem; margin: .2rem 0; }
ul.tree li { margin: .1rem 0; }
.mark { display: inline-block; width: 1.2rem; font-weight: 700; }
.pager { margin: .5rem 0; }
.pager a { margin-right: .75rem; }
svg.chart { background: #fff; border: 1px solid var(--line); }
.flash { background: #eaf4ec; border: 1px solid #b9dcc2; padding: .5rem .8rem; border-radius: 4px; }
"#;

/// A page in the console's frame, for a signed-in person.
pub fn page(title: &str, person: &Person, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    a.brand href="/" { "rosterd" }
                    nav {
                        @if person.viewer {
                            a href="/" { "Overview" }
                            a href="/groups" { "Groups" }
                            a href="/runs" { "Runs" }
                            a href="/holds" { "Holds" }
                            a href="/plan" { "Plan a rule" }
                        }
                        a href="/requests" { "Requests" }
                        a href="/reviews" { "Reviews" }
                    }
                    @if person.viewer {
                        form action="/workers" method="get" {
                            input type="search" name="q" placeholder="worker key or email" aria-label="Find a worker";
                            " "
                            button.quiet type="submit" { "Find" }
                        }
                    }
                    span.who {
                        (person.label())
                        " · " (if person.approver { "approver" } else if person.viewer { "viewer" } else { "no role" })
                    }
                    form action="/auth/logout" method="post" {
                        input type="hidden" name="csrf" value=(person.session.csrf_token);
                        button.quiet type="submit" { "Sign out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without the navigation, for those not signed in.
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header { a.brand href="/" { "rosterd" } }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="same-origin";
            title { (title) " · rosterd" }
            style { (PreEscaped(CSS)) }
        }
    }
}

pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        bare_page(
            title,
            html! {
                p { (detail) }
                p { a href="/" { "Back to the overview" } }
            },
        ),
    )
        .into_response()
}

/// A store failure: logged here, shown without its details.
/// A page that could not be made (the store failed, most likely): handlers return
/// [`PageResult`] and use `?`; the answer is [`internal`]'s.
#[derive(Debug)]
pub struct PageError(String);

impl<E: std::fmt::Display> From<E> for PageError {
    fn from(e: E) -> PageError {
        PageError(e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        internal(self.0)
    }
}

pub type PageResult = Result<Response, PageError>;

pub fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("console: {e}");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "the page could not be made; the daemon's log says why",
    )
}

pub fn forbidden_csrf() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Refused",
        "the form's security token is missing or stale; reload the page and try again",
    )
}

/// A stored time (RFC 3339) as people read it, to the minute in UTC (`2026-12-06 16:24
/// UTC`), the exact one in a tooltip and a `<time>` element; text that is no time as it is.
pub fn when(stamp: &str) -> Markup {
    match chrono::DateTime::parse_from_rfc3339(stamp) {
        Ok(t) => maud::html! {
            time datetime=(stamp) title=(stamp) {
                (t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC"))
            }
        },
        Err(_) => maud::html! { (stamp) },
    }
}

/// A URL path segment for `text`.
pub fn seg(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A small line chart of a group's size per run, drawn server-side: no JavaScript.
pub fn size_chart(points: &[(i64, u64)]) -> Markup {
    const W: f64 = 640.0;
    const H: f64 = 120.0;
    const PAD: f64 = 24.0;
    if points.is_empty() {
        return html! { p.muted { "No runs have changed this group yet." } };
    }
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let n = points.len();
    let x = |i: usize| {
        if n == 1 {
            W / 2.0
        } else {
            PAD + (W - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * v as f64 / max;
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.1)))
        .collect();
    let first = points.first().map_or(0, |p| p.0);
    let last = points.last().map_or(0, |p| p.0);
    html! {
        svg.chart width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-label=(format!("members per run, runs {first} to {last}")) {
            polyline fill="none" stroke="#2454c5" stroke-width="2" points=(path.join(" ")) {}
            @for (i, p) in points.iter().enumerate() {
                circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(p.1))) r="2.5" fill="#2454c5" {
                    title { "run " (p.0) ": " (thousands(p.1)) " members" }
                }
            }
            text x="4" y="14" font-size="11" fill="#5b6475" { (thousands(max as u64)) }
            text x="4" y=(H - 6.0) font-size="11" fill="#5b6475" { "run " (first) }
            text x=(W - 60.0) y=(H - 6.0) font-size="11" fill="#5b6475" { "run " (last) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_to_the_minute_with_the_exact_one_kept() {
        let shown = when("2026-12-06T16:24:07.661Z").into_string();
        assert_eq!(
            shown,
            "<time datetime=\"2026-12-06T16:24:07.661Z\" title=\"2026-12-06T16:24:07.661Z\">2026-12-06 16:24 UTC</time>"
        );
        assert!(when("2026-12-06T18:24:07+02:00")
            .into_string()
            .contains(">2026-12-06 16:24 UTC<"));
        assert_eq!(when("-").into_string(), "-");
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("ben.hansen@example.com"), "ben.hansen%40example.com");
    }

    #[test]
    fn values_in_pages_are_escaped() {
        let body = bare_page("t", html! { p { ("<script>") } }).into_string();
        assert!(body.contains("&lt;script&gt;"));
        assert!(!body.contains("<script>"));
    }
}
