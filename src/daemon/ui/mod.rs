//! The web console: server-rendered pages on the daemon's address (the JSON API stays under
//! `/api/v1`), usable without JavaScript. People sign in with OpenID Connect ([`auth`]);
//! viewers see, approvers also release held pushes. Sessions are cookies holding a random
//! token (the store keeps its hash) that are HttpOnly, SameSite=Lax and Secure unless the
//! console is plain http on loopback; every form that changes state carries the session's
//! CSRF token. Roles are worked out on every request, so a person taken out of a rosterd
//! approvers group loses the role at the next run, not at the end of their session.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::{DaemonError, Shared};
use crate::config::{Role, UiConfig};

pub mod auth;
mod html;
mod pages;

type Ui = Arc<Shared>;

/// What the console's own routes (sign-in, sessions) need: the daemon's state and the
/// console. The pages take the daemon's state alone.
#[derive(Clone)]
struct UiState {
    shared: Ui,
    console: Arc<Console>,
}

impl axum::extract::FromRef<UiState> for Ui {
    fn from_ref(state: &UiState) -> Ui {
        Arc::clone(&state.shared)
    }
}

/// The console's fixed parts, made when the daemon starts (a changed `ui:` section takes a
/// restart; its roles are read from the config in force at every request).
pub struct Console {
    oidc: auth::Oidc,
    /// Whether cookies are marked Secure.
    secure: bool,
    /// The pages' Content-Security-Policy.
    csp: HeaderValue,
    /// The console's origin, as browsers send it in `Origin`.
    origin: String,
    /// Sign-ins started per client address in the current minute.
    starts:
        std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (std::time::Instant, u32)>>,
}

/// Sign-ins one client address may start in a minute.
const STARTS_PER_MINUTE: u32 = 30;

impl Console {
    /// The console for `ui`, with the client secret from its environment variable.
    pub fn new(ui: &UiConfig, listen: std::net::SocketAddr) -> Result<Console, DaemonError> {
        let secret = crate::secret::Secret::from_env(&ui.client_secret_env).ok_or_else(|| {
            DaemonError::Config(format!(
                "ui.client_secret_env: the environment variable `{}` is not set\nhelp: the console signs people in with the client secret the identity provider gave rosterd",
                ui.client_secret_env
            ))
        })?;
        Console::with_secret(ui, listen, secret)
    }

    fn with_secret(
        ui: &UiConfig,
        listen: std::net::SocketAddr,
        secret: crate::secret::Secret,
    ) -> Result<Console, DaemonError> {
        let oidc = auth::Oidc::new(ui, secret)?;
        // Forms post only here; the sign-out form's answer sends the browser on to the
        // provider's end-session endpoint, which a browser checks against `form-action` too.
        let provider = match ui.sign_out_at_provider {
            true => format!(" {}", oidc.issuer_origin()),
            false => String::new(),
        };
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'{provider}; frame-ancestors 'none'; base-uri 'none'"
        );
        let origin = url::Url::parse(&ui.redirect_url)
            .map_err(|e| DaemonError::Config(format!("ui.redirect_url: {e}")))?
            .origin()
            .ascii_serialization();
        Ok(Console {
            oidc,
            secure: secure_cookies(listen, &ui.redirect_url),
            csp: HeaderValue::from_str(&csp)
                .map_err(|e| DaemonError::Config(format!("ui.issuer: {e}")))?,
            origin,
            starts: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Whether `client` may start another sign-in this minute (each start keeps a row for
    /// ten minutes and costs a request to the provider).
    fn may_start(&self, client: std::net::IpAddr) -> bool {
        let now = std::time::Instant::now();
        let minute = std::time::Duration::from_secs(60);
        let mut starts = crate::locks::lock(&self.starts);
        if starts.len() > 10_000 {
            starts.retain(|_, (since, _)| now.duration_since(*since) < minute);
        }
        let (since, n) = starts.entry(client).or_insert((now, 0));
        if now.duration_since(*since) >= minute {
            *since = now;
            *n = 0;
        }
        *n += 1;
        *n <= STARTS_PER_MINUTE
    }

    /// The console's origin (`https://rosterd.example.com`), which request tickets link to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn session_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-rosterd-session"
        } else {
            "rosterd-session"
        }
    }

    /// The cookie that ties sign-in `state` to this browser: one per sign-in, so that two
    /// started in two tabs both finish.
    fn login_cookie(&self, state: &str) -> String {
        let prefix = if self.secure {
            "__Host-rosterd-login"
        } else {
            "rosterd-login"
        };
        format!("{prefix}-{}", &auth::token_hash(state)[..16])
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Cookies are Secure unless the console is plain http on this machine (the config allows
/// plain http only to loopback), where a browser would not send a Secure cookie back.
fn secure_cookies(listen: std::net::SocketAddr, redirect_url: &str) -> bool {
    !(listen.ip().is_loopback() && redirect_url.starts_with("http://"))
}

/// A signed-in person, as the pages see them.
#[derive(Clone)]
pub struct Person {
    id_hash: String,
    session: crate::store::ConsoleSession,
    viewer: bool,
    approver: bool,
    /// The worker the snapshot in force has at the person's (verified) email, by key.
    worker: Option<String>,
    /// The rosterd groups that worker is in.
    groups: Vec<String>,
}

impl Person {
    /// `oidc:SUBJECT (EMAIL)`: what an approval records.
    fn approver_id(&self) -> String {
        match &self.session.email {
            Some(e) => format!("oidc:{} ({e})", self.session.subject),
            None => format!("oidc:{}", self.session.subject),
        }
    }

    /// Whether the person decides for `group`: one of its approvers (`requests.approvers`,
    /// else its owners) by email, identity-provider claim or rosterd group.
    fn decides_for(&self, group: &crate::rules::Group) -> bool {
        let email = self.session.email.as_deref().unwrap_or("");
        crate::access::is_approver(&group.approvers(), email, &self.session.claim_groups, |g| {
            self.groups.iter().any(|m| m == g)
        })
    }

    fn label(&self) -> String {
        self.session
            .name
            .clone()
            .or_else(|| self.session.email.clone())
            .unwrap_or_else(|| self.session.subject.clone())
    }
}

/// The console's routes, merged beside the API's.
pub fn router(shared: Ui, console: Arc<Console>) -> Router<Ui> {
    let state = UiState { shared, console };
    let signed_in = Router::new()
        .route("/", get(pages::overview))
        .route("/groups", get(pages::groups))
        .route("/groups/{name}", get(pages::group))
        .route("/groups/{name}/on", get(pages::group_on))
        .route("/groups/{name}/members.csv", get(pages::group_csv))
        .route("/groups/{name}/on.csv", get(pages::group_on_csv))
        .route("/workers", get(pages::find_worker))
        .route("/workers/{key}", get(pages::worker))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/holds", get(pages::holds))
        .route("/holds/{id}", get(pages::hold))
        .route("/plan", get(pages::preview))
        .route("/holds/{id}/approve", post(pages::approve))
        .route("/requests", get(pages::requests).post(pages::ask))
        .route("/requests/new", get(pages::new_request))
        .route("/requests/{id}", get(pages::request))
        .route("/requests/{id}/approve", post(pages::approve_request))
        .route("/requests/{id}/deny", post(pages::deny_request))
        .route("/requests/{id}/withdraw", post(pages::withdraw_request))
        .route("/reviews", get(pages::reviews).post(pages::review))
        .route("/sync", post(pages::sync_now))
        .route("/auth/logout", post(logout))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            same_origin,
        ));
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/signed-out", get(signed_out))
        .merge(signed_in)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            protect,
        ))
        .with_state(state)
}

/// Every console answer: no script may run, nothing may frame it, forms post only here (and
/// sign-out may go on to the provider), and no page (they show people's memberships) is
/// kept in a cache.
async fn protect(State(state): State<UiState>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.console.csp.clone());
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A request that would change state must come from the console's own pages: a browser
/// says where a request comes from (`Sec-Fetch-Site`, or else `Origin`), and one from
/// another site is refused before its CSRF token is even looked at. Clients that are not
/// browsers send neither and are judged by the token alone.
async fn same_origin(
    State(UiState { shared, console }): State<UiState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method();
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        return next.run(request).await;
    }
    let headers = request.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let allowed = match (text("sec-fetch-site"), text("origin")) {
        (Some(site), _) => site == "same-origin" || site == "none",
        (None, Some(origin)) => origin == console.origin,
        (None, None) => true,
    };
    if !allowed {
        shared.metrics.console_refused("origin");
        return html::error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "this request came from another site; use the console's own pages",
        );
    }
    next.run(request).await
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A path on the console to return to after signing in; anything else is `/`.
fn safe_return(path: &str) -> String {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.len() <= 2_048;
    if ok {
        path.to_string()
    } else {
        "/".to_string()
    }
}

/// Every page but sign-in needs a session; GETs without one are sent to sign in, anything
/// else is refused. A session without a role gets a page that says so (and may sign out).
async fn require_session(
    State(UiState { shared, console }): State<UiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = crate::clock::stamp(crate::clock::now_utc());
    let session = match cookie(request.headers(), console.session_cookie()) {
        Some(token) => {
            let hash = auth::token_hash(token);
            match shared.store.console_session(&hash, &now).await {
                Ok(s) => s.map(|s| (hash, s)),
                Err(e) => return html::internal(e),
            }
        }
        None => None,
    };
    let Some((id_hash, session)) = session else {
        if request.method() == axum::http::Method::GET {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let to = format!(
                "/auth/login?return_to={}",
                url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
            );
            return redirect(&to);
        }
        shared.metrics.console_refused("session");
        return html::error_page(
            StatusCode::FORBIDDEN,
            "Not signed in",
            "this request needs a signed-in session",
        );
    };
    let (viewer, approver, worker, groups) = match roles(&shared, &session).await {
        Ok(r) => r,
        Err(e) => return html::internal(e),
    };
    let person = Person {
        id_hash,
        session,
        viewer: viewer || approver,
        approver,
        worker,
        groups,
    };
    // Anyone signed in may ask for access and decide what they approve; the rest of the
    // console (everyone's memberships) is for its viewers.
    let path = request.uri().path();
    let open_to_all = path == "/auth/logout"
        || path == "/requests"
        || path.starts_with("/requests/")
        || path == "/reviews";
    if !person.viewer && !open_to_all {
        return html::page(
            "No access",
            &person,
            html! {
                p { "You are signed in as " strong { (person.label()) } ", but you are neither a viewer nor an approver of this console." }
                @if person.session.groups_elsewhere {
                    p { "Your identity provider left your groups out of this sign-in: you are in more groups than it puts in a sign-in token (Microsoft Entra ID stops at 200). Ask its administrator to send only the groups assigned to rosterd's application." }
                } @else {
                    p { "Ask CorpSec to add you to one of the groups the console's `ui.viewers` or `ui.approvers` name." }
                }
                p { "You may still " a href="/requests" { "ask for access to a group" } ", and decide the requests and reviews of the groups you approve." }
            },
        )
        .with_status(StatusCode::FORBIDDEN);
    }
    request.extensions_mut().insert(person);
    next.run(request).await
}

/// What the console knows of a signed-in person: whether a viewer and whether an approver,
/// their worker (by key) and the rosterd groups they are in.
type Roles = (bool, bool, Option<String>, Vec<String>);

/// The person's roles, by the config in force: a claim group from their ID token, or a
/// rosterd group they are in (found by their email in the snapshot in force, which also
/// says which worker they are, for access requests).
async fn roles(
    shared: &Shared,
    session: &crate::store::ConsoleSession,
) -> Result<Roles, DaemonError> {
    let config = shared.config();
    let Some(ui) = config.ui.as_ref() else {
        return Ok((false, false, None, Vec::new()));
    };
    // Who the person is in the export matters to a `group:` role, and to access requests;
    // without either, no page pays for finding them.
    let needs_worker = ui.rosterd_groups().next().is_some()
        || shared.rules().groups().iter().any(|g| g.requests.is_some());
    let mut in_groups: Vec<String> = Vec::new();
    let mut worker = None;
    let evaluated = match (needs_worker, &session.email) {
        (true, Some(_)) => super::evaluated(shared).await?,
        _ => None,
    };
    if let (Some(email), Some(e)) = (&session.email, evaluated) {
        if let Some(w) = e.snapshot.by_email(email) {
            worker = Some(e.snapshot.key(w).to_string());
            in_groups = e
                .evaluation
                .groups_of(w)
                .into_iter()
                .map(|g| e.rules.group(g).name.clone())
                .collect();
        }
    }
    let holds = |roles: &[Role]| {
        roles.iter().any(|r| match r {
            Role::Claim(c) => session.claim_groups.iter().any(|g| g == c),
            Role::Group(g) => in_groups.iter().any(|m| m == g),
        })
    };
    Ok((holds(&ui.viewers), holds(&ui.approvers), worker, in_groups))
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// Starts a sign-in: the browser goes to the provider with a fresh state, nonce and PKCE
/// challenge.
async fn login(
    State(UiState { shared, console }): State<UiState>,
    client: Option<axum::Extension<super::ClientAddr>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if let Some(axum::Extension(super::ClientAddr(ip))) = client {
        if !console.may_start(ip) {
            shared.metrics.console_refused("sign_in_rate");
            return html::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                "this address started too many sign-ins in the last minute; wait a minute and sign in again",
            );
        }
    }
    let return_to = safe_return(q.return_to.as_deref().unwrap_or("/"));
    let started = match console.oidc.start(&return_to).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("console sign-in: {e}");
            shared.metrics.console_sign_in("error");
            return html::error_page(StatusCode::BAD_GATEWAY, "Cannot sign in", &e.to_string());
        }
    };
    let now = crate::clock::now_utc();
    let expires = now + chrono::Duration::seconds(auth::LOGIN_SECONDS);
    match shared
        .store
        .begin_console_login(
            &auth::token_hash(&started.state),
            &started.login,
            &crate::clock::stamp(now),
            &crate::clock::stamp(expires),
        )
        .await
    {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(why)) => {
            tracing::warn!("console sign-in refused: {why}");
            shared.metrics.console_refused("sign_in_rate");
            return html::error_page(StatusCode::SERVICE_UNAVAILABLE, "Too many sign-ins", &why);
        }
        Err(e) => return html::internal(e),
    }
    let mut response = redirect(&started.authorize_url);
    response.headers_mut().append(
        header::SET_COOKIE,
        console.cookie(
            &console.login_cookie(&started.state),
            &started.state,
            auth::LOGIN_SECONDS,
        ),
    );
    response
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here: the state must be the one this browser
/// started with, then the code is traded for a verified ID token and a session begins.
async fn callback(
    State(UiState { shared, console }): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    // A sign-in that does not finish is logged and counted, with what the person sees.
    let refused = |status: StatusCode, detail: &str| {
        tracing::warn!("console sign-in: {detail}");
        shared.metrics.console_sign_in("refused");
        html::error_page(status, "Sign-in failed", detail)
    };
    if let Some(error) = &q.error {
        // The code only: the description is free text that anyone can put in a link to
        // this page, and the console would be showing it in its own name.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refused(
            StatusCode::FORBIDDEN,
            &format!("the identity provider answered with the error `{code}`; its administrator can look it up in the provider's log"),
        );
    }
    let (Some(code), Some(state)) = (&q.code, &q.state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the identity provider's answer has no code or state",
        );
    };
    let login_cookie = console.login_cookie(state);
    if cookie(&headers, &login_cookie) != Some(state.as_str()) {
        return refused(
            StatusCode::FORBIDDEN,
            "this sign-in was not started in this browser; sign in again",
        );
    }
    let now = crate::clock::now_utc();
    let login = match shared
        .store
        .take_console_login(&auth::token_hash(state), &crate::clock::stamp(now))
        .await
    {
        Ok(Some(l)) => l,
        Ok(None) => {
            return refused(
                StatusCode::FORBIDDEN,
                &auth::SignInError::UnknownState.to_string(),
            )
        }
        Err(e) => return html::internal(e),
    };
    let identity = match console.oidc.finish(code, &login).await {
        Ok(i) => i,
        Err(e @ auth::SignInError::Refused(_)) => {
            return refused(StatusCode::FORBIDDEN, &e.to_string())
        }
        Err(e) => {
            tracing::warn!("console sign-in: {e}");
            shared.metrics.console_sign_in("error");
            return html::error_page(StatusCode::FORBIDDEN, "Sign-in failed", &e.to_string());
        }
    };
    let hours = shared.config().ui.as_ref().map_or(8.0, |u| u.session_hours);
    let token = auth::random_token();
    let session = auth::session_for(identity, hours, now);
    tracing::info!(subject = %session.subject, email = session.email.as_deref().unwrap_or(""), "console: signed in");
    if session.groups_elsewhere {
        tracing::warn!(
            subject = %session.subject,
            "console: the identity provider left the groups claim out of the ID token (too many groups: Entra ID's overage), so no `claim:` role can match; emit only the groups assigned to the application, or give the person a `group:` role"
        );
    }
    shared.metrics.console_sign_in("ok");
    // A session this browser already had ends: a new sign-in is a new session, never one
    // a stolen or fixed cookie still opens.
    if let Some(old) = cookie(&headers, console.session_cookie()) {
        if let Err(e) = shared
            .store
            .end_console_session(&auth::token_hash(old))
            .await
        {
            return html::internal(e);
        }
    }
    if let Err(e) = shared
        .store
        .create_console_session(
            &auth::token_hash(&token),
            &session,
            &crate::clock::stamp(now),
        )
        .await
    {
        return html::internal(e);
    }
    let mut response = redirect(&safe_return(&login.return_to));
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        console.cookie(console.session_cookie(), &token, (hours * 3_600.0) as i64),
    );
    headers.append(header::SET_COOKIE, console.cookie(&login_cookie, "", 0));
    response
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    /// Approving a hold: the number of removals the approver confirmed they release.
    #[serde(default)]
    confirm: Option<String>,
}

/// Whether a form's CSRF token is the session's (compared in constant time).
fn csrf_ok(person: &Person, given: &str) -> bool {
    crate::secret::same(given, &person.session.csrf_token)
}

async fn logout(
    State(UiState { shared, console }): State<UiState>,
    axum::Extension(person): axum::Extension<Person>,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let given = form.map(|f| f.0.csrf).unwrap_or_default();
    if !csrf_ok(&person, &given) {
        shared.metrics.console_refused("csrf");
        return html::forbidden_csrf();
    }
    if let Err(e) = shared.store.end_console_session(&person.id_hash).await {
        return html::internal(e);
    }
    tracing::info!(subject = %person.session.subject, "console: signed out");
    // The provider's session ends too where it can, so the next person at this browser is
    // asked to sign in; it sends the browser back to the signed-out page.
    let next = console
        .oidc
        .end_session_url(person.session.id_token.as_ref())
        .await;
    let mut response = redirect(next.as_deref().unwrap_or("/auth/signed-out"));
    response.headers_mut().append(
        header::SET_COOKIE,
        console.cookie(console.session_cookie(), "", 0),
    );
    response
}

async fn signed_out() -> Response {
    html::bare_page(
        "Signed out",
        html! {
            p { "You are signed out of rosterd's console." }
            p { a href="/auth/login" { "Sign in again" } }
        },
    )
    .into_response()
}

trait WithStatus {
    fn with_status(self, status: StatusCode) -> Response;
}

impl WithStatus for Markup {
    fn with_status(self, status: StatusCode) -> Response {
        (status, self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(safe_return("/groups/sales?page=2"), "/groups/sales?page=2");
        assert_eq!(safe_return("//evil.example.com/"), "/");
        assert_eq!(safe_return("https://evil.example.com/"), "/");
        assert_eq!(safe_return("/\\evil.example.com"), "/");
        assert_eq!(safe_return("/a\nb"), "/");
    }

    #[test]
    fn cookies_are_secure_unless_plain_http_on_loopback() {
        let at = |a: &str| {
            a.parse::<std::net::SocketAddr>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert!(!secure_cookies(
            at("127.0.0.1:9464"),
            "http://127.0.0.1:9464/auth/callback"
        ));
        assert!(secure_cookies(
            at("127.0.0.1:9464"),
            "https://rosterd.example.com/auth/callback"
        ));
        assert!(secure_cookies(
            at("0.0.0.0:9464"),
            "https://rosterd.example.com/auth/callback"
        ));
        let ui: crate::config::UiConfig = serde_yaml::from_str(
            "{issuer: 'https://idp.example.com', client_id: c, redirect_url: 'https://rosterd.example.com/auth/callback', viewers: [{claim: x}]}",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let console =
            Console::with_secret(&ui, at("0.0.0.0:9464"), crate::secret::Secret::new("s"))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(console.session_cookie(), "__Host-rosterd-session");
        // Forms post here; sign-out's answer may go on to the provider only.
        assert!(console
            .csp
            .to_str()
            .unwrap_or_default()
            .contains("form-action 'self' https://idp.example.com;"));
        let cookie = console.cookie(console.session_cookie(), "tok", 60);
        assert_eq!(
            cookie.to_str().unwrap_or_default(),
            "__Host-rosterd-session=tok; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x-rosterd-session=no; rosterd-session=yes"),
        );
        assert_eq!(cookie(&headers, "rosterd-session"), Some("yes"));
        assert_eq!(cookie(&headers, "rosterd-login"), None);
    }
}
