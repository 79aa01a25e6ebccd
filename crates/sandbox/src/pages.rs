//! The sandbox's HTML: one page frame, escaping, and the small forms of the Amazon-side pages.

use axum::response::Html;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
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

/// Hidden inputs carrying `fields` through a form.
pub fn hidden_fields(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{}" value="{}">"#, escape(name), escape(value)))
        .collect()
}

/// A complete page titled `title` around `body` (already HTML).
pub fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Amazon sandbox</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f3f3; margin: 0; color: #0f1111; }}
header {{ background: #131921; color: #fff; padding: 12px 24px; font-weight: 600; }}
header span {{ color: #febd69; }}
main {{ max-width: 420px; margin: 32px auto; background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 24px; }}
h1 {{ font-size: 1.4em; margin-top: 0; }}
label {{ display: block; margin: 12px 0 4px; font-weight: 600; font-size: .9em; }}
input[type=email], input[type=password], input[type=text] {{ width: 100%; box-sizing: border-box; padding: 8px; border: 1px solid #888; border-radius: 4px; font-size: 1em; }}
button {{ margin-top: 16px; padding: 8px 16px; border-radius: 6px; border: 1px solid #a88734; background: #f0c14b; font-size: 1em; cursor: pointer; }}
button.secondary {{ background: #eee; border-color: #aaa; }}
.error {{ color: #b12704; }}
.note {{ color: #565959; font-size: .85em; }}
ul.scopes li {{ margin: 4px 0; }}
</style></head>
<body><header>amazon <span>sandbox</span></header><main>
<h1>{title}</h1>
{body}
</main></body></html>"#,
        title = escape(title),
    ))
}
