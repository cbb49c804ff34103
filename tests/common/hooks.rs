//! A webhook receiver for the notification scenarios.

/// What a webhook receiver was sent: (event, delivery, signature, body, the status answered).
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, String, u16)>>>;

/// A webhook receiver on 127.0.0.1 that answers 500 to the first try of every delivery.
pub async fn receiver() -> (String, Received) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Received = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/{hook}",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default()
                };
                let mut all = seen.lock().unwrap();
                let delivery = h("x-rosterd-delivery");
                let first = !all.iter().any(|r| r.1 == delivery && !delivery.is_empty())
                    && !all.iter().any(|r| r.3 == body);
                let status = if first { 500 } else { 200 };
                all.push((
                    h("x-rosterd-event"),
                    delivery,
                    h("x-rosterd-signature"),
                    body,
                    status,
                ));
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}
