//! The HTML listing of a directory (serve_dir with TERN_OPT_DIR_LISTING). File names
//! are attacker-chosen bytes: each is percent-encoded in its link and HTML-escaped in
//! its text, so no name can inject markup or a script. The page is bounded.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Entries listed at most; a larger directory says how many were left out.
const MAX_ENTRIES: usize = 5000;

/// The page for directory `dir`, reached at request path `uri` (ending in '/').
pub fn page(uri: &[u8], dir: &Path) -> Result<Vec<u8>, u16> {
    let mut names: Vec<(Vec<u8>, bool, u64)> = Vec::new();
    let mut left_out = 0usize;
    for entry in std::fs::read_dir(dir).map_err(|_| 403u16)? {
        let Ok(entry) = entry else { continue };
        if names.len() >= MAX_ENTRIES {
            left_out += 1;
            continue;
        }
        let meta = entry.metadata().ok();
        let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
        let size = meta.as_ref().map_or(0, |m| m.len());
        names.push((entry.file_name().as_bytes().to_vec(), is_dir, size));
    }
    names.sort();
    let mut out = String::with_capacity(256 + names.len() * 96);
    let title = escape_html(&String::from_utf8_lossy(uri));
    let _ = write!(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n");
    if uri != b"/" {
        out.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir, size) in &names {
        let slash = if *is_dir { "/" } else { "" };
        let text = escape_html(&String::from_utf8_lossy(name));
        let href = percent_encode(name);
        if *is_dir {
            let _ = writeln!(out, "<li><a href=\"{href}{slash}\">{text}{slash}</a></li>");
        } else {
            let _ = writeln!(out, "<li><a href=\"{href}\">{text}</a> {size} bytes</li>");
        }
    }
    out.push_str("</ul>\n");
    if left_out > 0 {
        let _ = writeln!(out, "<p>{left_out} more entries not listed.</p>");
    }
    out.push_str("</body></html>\n");
    Ok(out.into_bytes())
}

/// Text safe inside HTML elements and double-quoted attributes.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment for a relative link: unreserved bytes as they are, the rest %XX
/// (a name with ':' could otherwise read as a scheme, '?' or '#' cut the link).
fn percent_encode(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for &b in name {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_inject_markup_or_links() {
        let dir = std::env::temp_dir().join(format!("tern-listing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("<script>alert(1)<\\script>"), b"x").unwrap();
        std::fs::write(dir.join("a\"b'c&d.txt"), b"xy").unwrap();
        std::fs::write(dir.join("javascript:x"), b"").unwrap();
        let html = String::from_utf8(page(b"/d/", &dir).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;\\script&gt;"), "{html}");
        assert!(html.contains("href=\"a%22b%27c%26d.txt\">a&quot;b&#39;c&amp;d.txt</a> 2 bytes"), "{html}");
        assert!(html.contains("href=\"javascript%3Ax\""), "{html}");
        assert!(html.contains("href=\"sub/\">sub/</a>"), "{html}");
        assert!(html.contains("href=\"../\""), "{html}");
    }
}
