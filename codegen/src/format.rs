//! The canonical layout of a spec file (`vsmmu spec fmt`).
//!
//! The YAML is read line by line into a tree that keeps every comment with
//! the line it precedes and every scalar as written, then printed back in one
//! layout: keys in a fixed order per kind of entry, two-space indentation,
//! fields and named values as block mappings, `illegal`/`aliases` items and
//! `include` lists on one line each, conditions, bit ranges and section
//! references double-quoted, other text quoted only where YAML needs it.
//! Numbers are kept as written (`0x020`, `0b0010`): their notation is chosen
//! for the reader. Comments survive: a comment moves with the key or item
//! that follows it.
//!
//! Only the subset of YAML the spec uses is understood: block mappings and
//! sequences, single-line or multi-line flow collections without comments
//! inside, plain and quoted scalars, no anchors or multi-line scalars.

/// A mapping key or sequence item with the comment lines above it
/// (`""` for a blank line).
#[derive(Debug)]
struct Item {
    comments: Vec<String>,
    /// `None` for a sequence item.
    key: Option<String>,
    value: Node,
}

#[derive(Debug)]
enum Node {
    Map(Vec<Item>),
    Seq(Vec<Item>),
    /// As written, quotes included.
    Scalar(String),
}

/// One logical line: a flow collection spanning lines is joined into one.
struct Line {
    number: usize,
    indent: usize,
    text: String,
}

impl Line {
    fn is_comment(&self) -> bool {
        self.text.is_empty() || self.text.starts_with('#')
    }
}

/// Rewrites `text` in the canonical layout; errors name the line.
pub fn format(text: &str) -> Result<String, String> {
    let lines = logical_lines(text)?;
    let mut pos = 0;
    let doc = match parse_block(&lines, &mut pos, 0)? {
        Some(Node::Map(items)) => items,
        None => Vec::new(),
        Some(_) => return Err("the top level must be a mapping".into()),
    };
    if let Some(l) = lines[pos..].iter().find(|l| !l.is_comment()) {
        return Err(format!("line {}: unexpected indentation", l.number));
    }
    let mut trailing: Vec<String> = lines[pos..].iter().map(|l| l.text.clone()).collect();
    let (closing, doc): (Vec<Item>, Vec<Item>) = doc
        .into_iter()
        .partition(|i| i.key.as_deref() == Some(CLOSING));
    for c in closing {
        trailing.splice(0..0, c.comments);
    }
    let mut out = String::new();
    for (i, entry) in doc.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        write_comments(&mut out, &top_comments(&entry.comments), 0);
        let key = entry.key.as_deref().unwrap_or_default();
        let kind = key.split('/').next().unwrap_or_default();
        out.push_str(key);
        out.push(':');
        write_value(&mut out, &entry.value, 2, &Ctx::Entry(kind));
    }
    let mut trailing = top_comments(&trailing);
    while trailing.last().is_some_and(|l| l.is_empty()) {
        trailing.pop();
    }
    if !trailing.is_empty() {
        out.push('\n');
        write_comments(&mut out, &trailing, 0);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Depth of `{`/`[` outside quotes at the end of `s`, starting from `depth`.
fn flow_depth(s: &str, mut depth: i32) -> i32 {
    let mut quote = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                '#' if depth == 0 => break,
                _ => {}
            },
        }
    }
    depth
}

fn logical_lines(text: &str) -> Result<Vec<Line>, String> {
    let mut out: Vec<Line> = Vec::new();
    let mut depth = 0;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if depth > 0 {
            if trimmed.starts_with('#') {
                return Err(format!(
                    "line {}: a comment inside a flow collection",
                    i + 1
                ));
            }
            let last = out.last_mut().expect("an open flow collection has a line");
            last.text.push(' ');
            last.text.push_str(trimmed);
        } else {
            if raw.contains('\t') {
                return Err(format!("line {}: a tab", i + 1));
            }
            out.push(Line {
                number: i + 1,
                indent: raw.len() - raw.trim_start().len(),
                text: trimmed.to_string(),
            });
        }
        if !trimmed.starts_with('#') {
            depth = flow_depth(trimmed, depth);
        }
    }
    if depth != 0 {
        return Err("an unclosed flow collection at the end".into());
    }
    Ok(out)
}

/// The next line that is not a comment or blank, from `pos`.
fn next_content(lines: &[Line], pos: usize) -> Option<&Line> {
    lines[pos..].iter().find(|l| !l.is_comment())
}

/// The block (mapping or sequence) whose lines are indented by `indent`.
/// Comments before a line that does not belong to the block are left for
/// the block that takes that line.
fn parse_block(lines: &[Line], pos: &mut usize, indent: usize) -> Result<Option<Node>, String> {
    let Some(first) = next_content(lines, *pos) else {
        return Ok(None);
    };
    if first.indent != indent {
        return Ok(None);
    }
    let is_seq = first.text == "-" || first.text.starts_with("- ");
    let mut items = Vec::new();
    while let Some(line) = next_content(lines, *pos) {
        if line.indent < indent {
            break;
        }
        if line.indent > indent {
            return Err(format!("line {}: unexpected indentation", line.number));
        }
        let line_is_seq = line.text == "-" || line.text.starts_with("- ");
        if line_is_seq != is_seq {
            return Err(format!(
                "line {}: a mapping key and a sequence item at one level",
                line.number
            ));
        }
        let comments = take_comments(lines, pos);
        let line = &lines[*pos];
        *pos += 1;
        let item = if is_seq {
            parse_seq_item(lines, pos, line, comments)?
        } else {
            parse_key(lines, pos, indent, &line.text, line.number, comments)?
        };
        items.push(item);
    }
    if is_seq {
        return Ok(Some(Node::Seq(items)));
    }
    // Comments indented as this mapping's keys, after its last key, close it.
    let mut closing = Vec::new();
    while *pos < lines.len()
        && !lines[*pos].text.is_empty()
        && lines[*pos].is_comment()
        && lines[*pos].indent >= indent
    {
        closing.push(lines[*pos].text.clone());
        *pos += 1;
    }
    if !closing.is_empty() {
        items.push(Item {
            comments: closing,
            key: Some(CLOSING.to_string()),
            value: Node::Scalar(String::new()),
        });
    }
    Ok(Some(Node::Map(items)))
}

/// The pseudo-key of the comments that close a mapping (always written last).
const CLOSING: &str = "#";

fn take_comments(lines: &[Line], pos: &mut usize) -> Vec<String> {
    let mut out = Vec::new();
    while *pos < lines.len() && lines[*pos].is_comment() {
        out.push(lines[*pos].text.clone());
        *pos += 1;
    }
    out
}

/// `key: value` or `key:` followed by a deeper block.
fn parse_key(
    lines: &[Line],
    pos: &mut usize,
    indent: usize,
    text: &str,
    number: usize,
    comments: Vec<String>,
) -> Result<Item, String> {
    let (key, rest) = split_key(text).ok_or(format!("line {number}: expected `key: value`"))?;
    let value = if rest.is_empty() {
        let deeper = next_content(lines, *pos).map(|l| l.indent).unwrap_or(0);
        if deeper <= indent {
            return Err(format!("line {number}: `{key}:` has no value"));
        }
        parse_block(lines, pos, deeper)?.expect("a deeper line starts a block")
    } else {
        parse_inline(rest, number)?
    };
    Ok(Item {
        comments,
        key: Some(key.to_string()),
        value,
    })
}

/// `- scalar`, `- {flow}` or `- key: value` with more keys on deeper lines.
fn parse_seq_item(
    lines: &[Line],
    pos: &mut usize,
    line: &Line,
    comments: Vec<String>,
) -> Result<Item, String> {
    let rest = line.text[1..].trim_start();
    let inner_indent = line.indent + (line.text.len() - rest.len());
    let value = if rest.starts_with('{') || rest.starts_with('[') || split_key(rest).is_none() {
        parse_inline(rest, line.number)?
    } else {
        let mut keys = vec![parse_key(
            lines,
            pos,
            inner_indent,
            rest,
            line.number,
            Vec::new(),
        )?];
        if let Some(Node::Map(more)) = parse_block(lines, pos, inner_indent)? {
            keys.extend(more);
        }
        Node::Map(keys)
    };
    Ok(Item {
        comments,
        key: None,
        value,
    })
}

/// `key: rest` -> (key, rest); the key is plain or double-quoted text.
fn split_key(text: &str) -> Option<(&str, &str)> {
    if let Some(k) = text.strip_suffix(':') {
        if !k.contains(": ") && !k.starts_with(['{', '[', '"', '\'']) {
            return Some((k, ""));
        }
    }
    let at = text.find(": ")?;
    let key = &text[..at];
    if key.starts_with(['{', '[', '"', '\'']) || key.contains('#') {
        return None;
    }
    Some((key, text[at + 2..].trim()))
}

/// A flow collection or a scalar.
fn parse_inline(text: &str, number: usize) -> Result<Node, String> {
    let text = text.trim();
    if let Some(body) = text.strip_prefix('{') {
        let body = body
            .strip_suffix('}')
            .ok_or(format!("line {number}: text after a flow mapping"))?;
        let mut items = Vec::new();
        for part in split_flow(body) {
            let (k, v) = split_key(part)
                .or_else(|| part.strip_suffix(':').map(|k| (k, "")))
                .ok_or(format!("line {number}: `{part}` is not `key: value`"))?;
            items.push(Item {
                comments: Vec::new(),
                key: Some(k.trim().to_string()),
                value: parse_inline(v, number)?,
            });
        }
        return Ok(Node::Map(items));
    }
    if let Some(body) = text.strip_prefix('[') {
        let body = body
            .strip_suffix(']')
            .ok_or(format!("line {number}: text after a flow sequence"))?;
        let items = split_flow(body)
            .into_iter()
            .map(|p| {
                parse_inline(p, number).map(|value| Item {
                    comments: Vec::new(),
                    key: None,
                    value,
                })
            })
            .collect::<Result<_, _>>()?;
        return Ok(Node::Seq(items));
    }
    Ok(Node::Scalar(text.to_string()))
}

/// The comma-separated parts of a flow collection's body, outside quotes and
/// nested collections.
fn split_flow(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut depth = 0;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(body[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    parts.push(body[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Where a value sits, which decides its key order and style.
enum Ctx<'a> {
    /// The body of a `kind/NAME` entry.
    Entry(&'a str),
    /// An item of `fields:`.
    Field,
    /// `values:` of a field or an enum.
    Values,
    /// An item of `illegal:` or `aliases:`, on one line.
    Rule,
    /// `include:` and anything else, kept on one line when it is a collection.
    Other,
}

const FIELD_KEYS: &[&str] = &[
    "name",
    "word",
    "bits",
    "count",
    "stride",
    "kind",
    "description",
    "present_if",
    "writable_if",
    "enum",
    "values",
    "spec",
];

fn entry_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "register" => &[
            "spec",
            "description",
            "page",
            "offset",
            "width",
            "access",
            "reset",
            "emulation",
            "ack",
            "layout",
            "on_write",
            "writable_if",
            "present_if",
            "queue",
            "role",
            "fields",
        ],
        "enum" => &["spec", "description", "values"],
        _ => &[
            "spec",
            "description",
            "opcode",
            "id",
            "words",
            "include",
            "fields",
            "illegal",
            "aliases",
        ],
    }
}

/// Text that is always double-quoted: conditions, bit ranges, section references.
const QUOTED_KEYS: &[&str] = &["spec", "bits", "if", "present_if", "writable_if", "why"];

/// Items sorted by the canonical key order; unknown keys last, as written.
fn ordered<'a>(items: &'a [Item], order: &[&str]) -> Vec<&'a Item> {
    let rank = |i: &Item| {
        let k = i.key.as_deref().unwrap_or_default();
        order.iter().position(|o| *o == k).unwrap_or(order.len())
    };
    let mut v: Vec<&Item> = items.iter().collect();
    v.sort_by_key(|i| (i.key.as_deref() == Some(CLOSING), rank(i)));
    v
}

/// Comments above a top-level entry: runs of blank lines become one, none
/// first (the writer puts one blank line between entries). A blank line
/// between a comment and the entry stays: the comment is about more than it.
fn top_comments(comments: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in comments {
        if c.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(c.clone());
    }
    out
}

fn write_comments(out: &mut String, comments: &[String], indent: usize) {
    for c in comments {
        if c.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&" ".repeat(indent));
            out.push_str(c);
            out.push('\n');
        }
    }
}

/// Comments inside an entry, without blank lines.
fn inner_comments(comments: &[String]) -> Vec<String> {
    comments.iter().filter(|c| !c.is_empty()).cloned().collect()
}

/// Writes what follows `key:` (a space and a one-line value, or a newline
/// and a block at `indent`).
fn write_value(out: &mut String, value: &Node, indent: usize, ctx: &Ctx) {
    match (value, ctx) {
        (Node::Scalar(s), _) => {
            out.push(' ');
            out.push_str(s);
            out.push('\n');
        }
        (Node::Map(items), Ctx::Entry(kind)) => {
            out.push('\n');
            for item in ordered(items, entry_keys(kind)) {
                write_entry_key(out, item, indent);
            }
        }
        (Node::Map(items), Ctx::Field) => {
            write_block_map(out, &ordered(items, FIELD_KEYS), indent, &|k| match k {
                "values" => Ctx::Values,
                _ => Ctx::Other,
            });
        }
        (Node::Map(items), Ctx::Values) => {
            let items: Vec<&Item> = items.iter().collect();
            write_block_map(out, &items, indent, &|_| Ctx::Other);
        }
        (node, _) => {
            out.push(' ');
            out.push_str(&flow(node, None));
            out.push('\n');
        }
    }
}

fn write_block_map(out: &mut String, items: &[&Item], indent: usize, ctx: &dyn Fn(&str) -> Ctx) {
    out.push('\n');
    for item in items {
        let key = item.key.as_deref().unwrap_or_default();
        write_comments(out, &inner_comments(&item.comments), indent);
        if key == CLOSING {
            continue;
        }
        out.push_str(&" ".repeat(indent));
        out.push_str(key);
        out.push(':');
        write_value(
            out,
            &scalar_in(&item.value, key, false),
            indent + 2,
            &ctx(key),
        );
    }
}

/// A key of an entry: `fields`, `illegal` and `aliases` as block sequences.
fn write_entry_key(out: &mut String, item: &Item, indent: usize) {
    let key = item.key.as_deref().unwrap_or_default();
    write_comments(out, &inner_comments(&item.comments), indent);
    if key == CLOSING {
        return;
    }
    out.push_str(&" ".repeat(indent));
    out.push_str(key);
    out.push(':');
    let item_ctx = match key {
        "fields" => Some(Ctx::Field),
        "illegal" | "aliases" => Some(Ctx::Rule),
        _ => None,
    };
    match (&item.value, item_ctx) {
        (Node::Seq(elems), Some(ctx)) if !elems.is_empty() => {
            out.push('\n');
            for e in elems {
                write_comments(out, &inner_comments(&e.comments), indent + 2);
                write_seq_item(out, &e.value, indent + 2, &ctx);
            }
        }
        (Node::Map(_), None) if key == "values" => {
            write_value(out, &item.value, indent + 2, &Ctx::Values)
        }
        (value, _) => write_value(out, &scalar_in(value, key, false), indent + 2, &Ctx::Other),
    }
}

/// `- name: X` with the other keys below it, or `- {if: ..., why: ...}`.
fn write_seq_item(out: &mut String, value: &Node, indent: usize, ctx: &Ctx) {
    out.push_str(&" ".repeat(indent));
    out.push('-');
    match (value, ctx) {
        (Node::Map(_), Ctx::Field) => {
            let mut block = String::new();
            write_value(&mut block, value, indent + 2, ctx);
            // The first key goes on the dash's line.
            out.push(' ');
            out.push_str(block.trim_start());
        }
        (Node::Map(items), _) => {
            let order: &[&str] = &["name", "if", "why"];
            let items = ordered(items, order);
            out.push(' ');
            out.push_str(&flow_map(&items));
            out.push('\n');
        }
        (node, _) => {
            out.push(' ');
            out.push_str(&flow(node, None));
            out.push('\n');
        }
    }
}

fn flow_map(items: &[&Item]) -> String {
    let parts: Vec<String> = items
        .iter()
        .filter(|i| i.key.as_deref() != Some(CLOSING))
        .map(|i| {
            let k = i.key.as_deref().unwrap_or_default();
            format!("{k}: {}", flow(&i.value, Some(k)))
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A value on one line (inside a flow collection when `key` is its key there).
fn flow(node: &Node, key: Option<&str>) -> String {
    match node {
        Node::Scalar(_) => match scalar_in(node, key.unwrap_or_default(), key.is_some()) {
            Node::Scalar(s) => s,
            _ => unreachable!("a scalar stays a scalar"),
        },
        Node::Map(items) => flow_map(&items.iter().collect::<Vec<_>>()),
        Node::Seq(items) => {
            let parts: Vec<String> = items.iter().map(|i| flow(&i.value, None)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A scalar in its canonical quoting for `key`; other nodes unchanged.
fn scalar_in(node: &Node, key: &str, in_flow: bool) -> Node {
    let Node::Scalar(raw) = node else {
        return match node {
            Node::Map(items) => Node::Map(items.iter().map(copy_item).collect()),
            Node::Seq(items) => Node::Seq(items.iter().map(copy_item).collect()),
            Node::Scalar(_) => unreachable!(),
        };
    };
    Node::Scalar(canonical_scalar(raw, key, in_flow))
}

fn copy_item(i: &Item) -> Item {
    Item {
        comments: i.comments.clone(),
        key: i.key.clone(),
        value: scalar_in(&i.value, i.key.as_deref().unwrap_or_default(), false),
    }
}

/// Conditions, bit ranges and section references double-quoted; other text
/// plain where YAML reads it back as the same string, else double-quoted;
/// numbers and other plain values as written.
fn canonical_scalar(raw: &str, key: &str, in_flow: bool) -> String {
    let quoted = raw.starts_with('"') || raw.starts_with('\'');
    let text = if quoted {
        match serde_yaml::from_str::<String>(raw) {
            Ok(t) => t,
            Err(_) => return raw.to_string(),
        }
    } else {
        raw.to_string()
    };
    if QUOTED_KEYS.contains(&key) {
        return double_quoted(&text);
    }
    if !quoted {
        return raw.to_string();
    }
    if reads_back_as(&text, in_flow) {
        text
    } else {
        double_quoted(&text)
    }
}

fn double_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether `text` written plain is read back as the string `text`.
fn reads_back_as(text: &str, in_flow: bool) -> bool {
    let doc = if in_flow {
        format!("{{k: {text}}}")
    } else {
        format!("k: {text}")
    };
    let Ok(serde_yaml::Value::Mapping(m)) = serde_yaml::from_str::<serde_yaml::Value>(&doc) else {
        return false;
    };
    m.get("k").and_then(|v| v.as_str()) == Some(text) && m.len() == 1
}
