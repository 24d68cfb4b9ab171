//! Tracked links in messages (issue 6 §4): an open pixel and click redirects that
//! record `Email Opened` and `Link Clicked` with the message's campaign.
//!
//! Both carry the message id sealed under the shop's link secret ([`crate::seal`]); a
//! click token also seals the destination, so the redirect cannot be turned into an
//! open redirect to somewhere the shop never linked.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

/// Path prefix of the open pixel: `/t/o/<token>.gif`.
pub const OPEN_PATH: &str = "/t/o/";
/// Path prefix of click redirects: `/t/c/<token>`.
pub const CLICK_PATH: &str = "/t/c/";

/// The open-pixel URL of `message_id`.
pub fn open_url(base: &str, secret: &[u8], message_id: &str) -> String {
    format!(
        "{}{OPEN_PATH}{}.gif",
        base.trim_end_matches('/'),
        crate::seal::seal(secret, "open", message_id)
    )
}

/// The message id of a genuine open token (`<token>` or `<token>.gif`).
pub fn read_open_token(secret: &[u8], token: &str) -> Option<String> {
    crate::seal::unseal(secret, "open", token.trim_end_matches(".gif"))
}

/// The redirect URL that records a click of `target` in `message_id`.
pub fn click_url(base: &str, secret: &[u8], message_id: &str, target: &str) -> String {
    format!(
        "{}{CLICK_PATH}{}",
        base.trim_end_matches('/'),
        crate::seal::seal(secret, "click", &format!("{message_id}\n{target}"))
    )
}

/// (message id, destination) of a genuine click token.
pub fn read_click_token(secret: &[u8], token: &str) -> Option<(String, String)> {
    let payload = crate::seal::unseal(secret, "click", token)?;
    let (id, target) = payload.split_once('\n')?;
    Some((id.to_string(), target.to_string()))
}

/// Rewrites every `href="http…"` / `href='http…'` in `html` through [`click_url`],
/// except links to `keep` (the unsubscribe link must work without the redirect), and
/// appends the open pixel before `</body>` (or at the end).
pub fn track_html(html: &str, base: &str, secret: &[u8], message_id: &str, keep: &str) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(at) = find_href(rest) {
        let (before, from) = rest.split_at(at.start);
        out.push_str(before);
        let quote = at.quote;
        let value_start = at.value_start - at.start;
        let Some(len) = from[value_start..].find(quote) else {
            out.push_str(from);
            rest = "";
            break;
        };
        let raw = &from[value_start..value_start + len];
        let target = decode_entities(raw);
        out.push_str(&from[..value_start]);
        let kept = !keep.is_empty() && target.starts_with(keep);
        if target.starts_with("http") && !kept {
            out.push_str(&click_url(base, secret, message_id, &target));
        } else {
            out.push_str(raw);
        }
        rest = &from[value_start + len..];
    }
    out.push_str(rest);
    let pixel = format!(
        r#"<img src="{}" width="1" height="1" alt="" style="display:none">"#,
        open_url(base, secret, message_id)
    );
    match out.to_ascii_lowercase().rfind("</body>") {
        Some(i) => out.insert_str(i, &pixel),
        None => out.push_str(&pixel),
    }
    out
}

/// Decodes the character references an HTML-escaping template writes into attribute
/// values (`&amp;`, `&#x2f;`, `&quot;`…), so the tracked destination is the real URL.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

struct Href {
    start: usize,
    value_start: usize,
    quote: char,
}

fn find_href(s: &str) -> Option<Href> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("href=") {
        let start = from + i;
        let q = s[start + 5..].chars().next()?;
        if q == '"' || q == '\'' {
            return Some(Href {
                start,
                value_start: start + 6,
                quote: q,
            });
        }
        from = start + 5;
    }
    None
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_destinations_are_decoded() {
        let html = r#"<a href="https:&#x2f;&#x2f;shop.example&#x2f;p?a=1&amp;b=&#39;x&#39;">p</a><a href="https:&#x2f;&#x2f;shop.example&#x2f;u&#x2f;1">u</a>"#;
        let out = track_html(html, "http://fw", b"s", "m", "https://shop.example/u/");
        let token = out.split("/t/c/").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(
            read_click_token(b"s", token).unwrap().1,
            "https://shop.example/p?a=1&b='x'"
        );
        assert!(
            out.contains(r#"href="https:&#x2f;&#x2f;shop.example&#x2f;u&#x2f;1""#),
            "the unsubscribe link stays: {out}"
        );
        assert_eq!(decode_entities("a &bogus; &#xZZ; & b"), "a &bogus; &#xZZ; & b");
    }

    #[test]
    fn links_are_rewritten_and_read_back() {
        let html = r#"<html><body><a href="https://shop.example/p/1?a=1&amp;b=2">看看</a> <a href='https://shop.example/u/x'>退訂</a> <a href="/rel">r</a></body></html>"#;
        let out = track_html(html, "http://fw.local/", b"s", "m1", "https://shop.example/u/");
        assert!(out.contains("退訂"));
        assert!(out.contains("href='https://shop.example/u/x'"), "{out}");
        assert!(out.contains(r#"href="/rel""#));
        let token = out.split("/t/c/").nth(1).unwrap().split('"').next().unwrap();
        let (id, target) = read_click_token(b"s", token).unwrap();
        assert_eq!(
            (id.as_str(), target.as_str()),
            ("m1", "https://shop.example/p/1?a=1&b=2")
        );
        let pixel = out.split("/t/o/").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(read_open_token(b"s", pixel).as_deref(), Some("m1"));
        assert!(out.find("<img").unwrap() < out.find("</body>").unwrap());
        assert!(read_click_token(b"other", token).is_none());
        assert!(
            read_open_token(b"s", token).is_none(),
            "a click token is not an open token"
        );
    }
}
