//! Google's batch requests: several Directory API calls in one HTTP request, as a
//! `multipart/mixed` body whose parts are HTTP requests (`application/http`), answered by a
//! `multipart/mixed` body whose parts are their HTTP answers, matched by `Content-ID`. Each
//! call still counts against the quota; the batch saves the round trips. The emulator
//! reads and writes the same format with these functions.

use serde_json::Value;

/// One call in a batch, as written: method, path (from the host's root, with its query)
/// and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
}

/// One call's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
}

/// The boundary rosterd writes (no part's JSON can hold it on a line of its own).
const BOUNDARY: &str = "rosterd_batch_8d1f0c2b";

/// The media type of a batch request's body.
pub fn content_type() -> String {
    format!("multipart/mixed; boundary={BOUNDARY}")
}

/// A batch request's body: each part's `Content-ID` is `<item-N>`, from 1.
pub fn encode(parts: &[Part]) -> Vec<u8> {
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        out.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Type: application/http\r\nContent-ID: <item-{}>\r\n\r\n",
            i + 1
        ));
        out.push_str(&format!("{} {} HTTP/1.1\r\n", part.method, part.path));
        match &part.body {
            Some(body) => {
                let json = body.to_string();
                out.push_str(&format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}\r\n",
                    json.len()
                ));
            }
            None => out.push_str("\r\n"),
        }
    }
    out.push_str(&format!("--{BOUNDARY}--\r\n"));
    out.into_bytes()
}

/// The boundary a `multipart/mixed` media type names.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Header lines, as (name in lower case, value).
type Headers = Vec<(String, String)>;

/// The parts of a multipart body: each one's headers and the rest.
fn split(body: &str, boundary: &str) -> Result<Vec<(Headers, String)>, String> {
    let delimiter = format!("--{boundary}");
    let mut sections = body.split(&delimiter);
    // What comes before the first boundary is a preamble, ignored.
    sections.next();
    let mut out = Vec::new();
    let mut closed = false;
    for section in sections {
        if section.starts_with("--") {
            closed = true;
            break;
        }
        let section = section
            .strip_prefix("\r\n")
            .or_else(|| section.strip_prefix('\n'));
        let section = section.ok_or("a boundary is not followed by a line break")?;
        let (head, rest) = head_and_rest(section);
        out.push((head, rest.trim_end_matches(['\r', '\n']).to_string()));
    }
    if !closed {
        return Err(format!("the body does not end with `--{boundary}--`"));
    }
    Ok(out)
}

/// Header lines up to the first empty line, and what follows it.
fn head_and_rest(text: &str) -> (Headers, &str) {
    let mut headers = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = after;
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            return (headers, rest);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        if rest.is_empty() {
            return (headers, rest);
        }
    }
}

/// The `N` of a `Content-ID` such as `<item-N>`, `<response-item-N>` or Google's client's
/// `<response-UUID+N>`.
fn index_of(content_id: &str) -> Option<usize> {
    let id = content_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let digits = id.rsplit(['-', '+']).next()?;
    digits.parse().ok()
}

/// A batch's answer, one per part, in the order of the parts sent (`count` of them): by
/// `Content-ID` where the answer gives them, else in its order.
pub fn decode(body: &[u8], content_type: &str, count: usize) -> Result<Vec<Answer>, String> {
    let boundary = boundary_of(content_type)
        .ok_or_else(|| format!("not multipart/mixed: `{content_type}`"))?;
    let body = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut answers: Vec<Option<Answer>> = vec![None; count];
    for (n, (headers, rest)) in split(body, &boundary)?.into_iter().enumerate() {
        let (status_line, after) = rest.split_once('\n').unwrap_or((&rest, ""));
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("part {}: no HTTP status line", n + 1))?;
        let (_, json) = head_and_rest(after);
        let body = (!json.trim().is_empty())
            .then(|| serde_json::from_str(json.trim()))
            .transpose()
            .map_err(|e| format!("part {}: its body is not JSON: {e}", n + 1))?;
        let index = headers
            .iter()
            .find(|(name, _)| name == "content-id")
            .and_then(|(_, id)| index_of(id))
            .map_or(n, |i| i - 1);
        let slot = answers
            .get_mut(index)
            .ok_or_else(|| format!("an answer to a part that was not sent ({})", index + 1))?;
        *slot = Some(Answer { status, body });
    }
    answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| a.ok_or_else(|| format!("no answer to part {}", i + 1)))
        .collect()
}

/// A batch request's parts, as the emulator reads them: each one's `Content-ID` and call.
pub fn parse_request(body: &[u8], content_type: &str) -> Result<Vec<(String, Part)>, String> {
    let boundary = boundary_of(content_type)
        .ok_or_else(|| format!("not multipart/mixed: `{content_type}`"))?;
    let body = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut out = Vec::new();
    for (n, (headers, rest)) in split(body, &boundary)?.into_iter().enumerate() {
        let id = headers
            .iter()
            .find(|(name, _)| name == "content-id")
            .map_or_else(|| format!("<{}>", n + 1), |(_, id)| id.clone());
        let (request_line, after) = rest.split_once('\n').unwrap_or((&rest, ""));
        let mut words = request_line.split_whitespace();
        let (Some(method), Some(path)) = (words.next(), words.next()) else {
            return Err(format!("part {}: no request line", n + 1));
        };
        let (_, json) = head_and_rest(after);
        let body = (!json.trim().is_empty())
            .then(|| serde_json::from_str(json.trim()))
            .transpose()
            .map_err(|e| format!("part {}: its body is not JSON: {e}", n + 1))?;
        out.push((
            id,
            Part {
                method: method.to_string(),
                path: path.to_string(),
                body,
            },
        ));
    }
    Ok(out)
}

/// A batch's answer, as the emulator writes it: each part's `Content-ID` is
/// `<response-ID>` for the request part's `<ID>`.
pub fn encode_answer(answers: &[(String, Answer)], boundary: &str) -> Vec<u8> {
    let mut out = String::new();
    for (id, answer) in answers {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{id}>\r\n\r\n"
        ));
        let reason = reqwest::StatusCode::from_u16(answer.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        out.push_str(&format!("HTTP/1.1 {} {reason}\r\n", answer.status));
        match &answer.body {
            Some(body) => {
                let json = body.to_string();
                out.push_str(&format!(
                    "Content-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{json}\r\n",
                    json.len()
                ));
            }
            None => out.push_str("Content-Length: 0\r\n\r\n"),
        }
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_batch_reads_back_as_it_was_written() {
        let parts = vec![
            Part {
                method: "POST".into(),
                path: "/admin/directory/v1/groups/g%40x.com/members".into(),
                body: Some(json!({"email": "a@x.com", "role": "MEMBER"})),
            },
            Part {
                method: "DELETE".into(),
                path: "/admin/directory/v1/groups/g%40x.com/members/b%40x.com".into(),
                body: None,
            },
        ];
        let read = parse_request(&encode(&parts), &content_type()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].0, "<item-1>");
        assert_eq!(read[0].1, parts[0]);
        assert_eq!(read[1].1, parts[1]);
        // Answered out of order: matched by Content-ID.
        let answers = vec![
            (
                read[1].0.clone(),
                Answer {
                    status: 204,
                    body: None,
                },
            ),
            (
                read[0].0.clone(),
                Answer {
                    status: 409,
                    body: Some(
                        json!({"error": {"code": 409, "message": "Member already exists."}}),
                    ),
                },
            ),
        ];
        let bytes = encode_answer(&answers, "batch_abc");
        let got = decode(&bytes, "multipart/mixed; boundary=batch_abc", 2).unwrap();
        assert_eq!(got[0].status, 409);
        assert_eq!(got[0].body.as_ref().unwrap()["error"]["code"], 409);
        assert_eq!(got[1].status, 204);
        assert!(got[1].body.is_none());
    }

    #[test]
    fn a_broken_batch_answer_is_an_error_not_a_guess() {
        let ct = "multipart/mixed; boundary=b";
        assert!(decode(
            b"--b\r\nContent-ID: <response-item-1>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            ct,
            1
        )
        .is_err());
        assert!(decode(b"--b--\r\n", ct, 1).is_err(), "an answer missing");
        assert!(decode(b"", "application/json", 0).is_err());
        assert_eq!(index_of("<response-5bd7f4a0-aaaa+12>"), Some(12));
    }
}
