//! The `Link` response header (RFC 8288), as GitHub uses it for pagination.

/// Returns the URL with `rel="next"`, if any.
pub fn next_url(header: &str) -> Option<String> {
    find_rel(header, "next")
}

/// The `page` query parameter of a URL (GitHub's pagination links carry it).
pub fn page_number(url: &str) -> Option<u64> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
}

/// Returns the URL of the given relation (`next`, `last`, `prev`, `first`).
pub fn find_rel(header: &str, rel: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let Some(end) = part.find('>') else { continue };
        let Some(url) = part.get(1..end).filter(|_| part.starts_with('<')) else {
            continue;
        };
        let params = &part[end + 1..];
        let matches = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|v| v.trim_matches('"').split_whitespace().any(|r| r == rel))
                .unwrap_or(false)
        });
        if matches {
            return Some(url.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn page_numbers() {
        assert_eq!(page_number("https://x/r?per_page=100&page=7"), Some(7));
        assert_eq!(page_number("https://x/r?per_page=100"), None);
        assert_eq!(page_number("https://x/r?subpage=3"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_github_links() {
        let h = r#"<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; rel="next", <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel="last""#;
        assert_eq!(
            next_url(h).as_deref(),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=2")
        );
        assert_eq!(
            find_rel(h, "last").as_deref(),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=5")
        );
        assert_eq!(next_url(r#"<https://x/?page=1>; rel="prev""#), None);
        assert_eq!(next_url(""), None);
        assert_eq!(next_url("garbage, <also"), None);
    }
}
