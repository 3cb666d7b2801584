//! `vsmmu spec fmt`: the canonical layout changes how the spec is written,
//! never what it says, and keeps every comment.

use std::path::Path;

use smmuv3_codegen::format::format;
use smmuv3_codegen::{load_texts, Spec};

fn committed() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The model without where things were written (file texts, line numbers).
fn meaning(mut spec: Spec) -> Spec {
    spec.files.clear();
    for r in &mut spec.registers {
        r.origin.line = None;
        r.fields.iter_mut().for_each(|f| f.line = None);
    }
    for r in spec
        .commands
        .iter_mut()
        .chain(&mut spec.events)
        .chain(&mut spec.structs)
    {
        r.origin.line = None;
        r.fields.iter_mut().for_each(|f| f.line = None);
    }
    spec.enums.iter_mut().for_each(|e| e.origin.line = None);
    spec
}

fn formatted(files: &[(String, String)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(n, t)| (n.clone(), format(t).unwrap_or_else(|e| panic!("{n}: {e}"))))
        .collect()
}

fn comments(text: &str) -> Vec<String> {
    let mut c: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .map(str::to_string)
        .collect();
    c.sort();
    c
}

/// The same text out of order: each entry's keys (with the comments above
/// them) reversed, section references unquoted.
fn shuffled(text: &str) -> String {
    let mut out = String::new();
    let mut blocks: Vec<String> = Vec::new();
    let mut pending = String::new();
    let flush = |out: &mut String, blocks: &mut Vec<String>, pending: &mut String| {
        for b in blocks.drain(..).rev() {
            out.push_str(&b);
        }
        out.push_str(pending);
        pending.clear();
    };
    for line in text.lines() {
        let line = match line.strip_prefix("  spec: \"") {
            Some(rest) => format!("  spec: {}", rest.trim_end_matches('"')),
            None => line.to_string(),
        };
        let indent = line.len() - line.trim_start().len();
        let comment = line.trim_start().starts_with('#') || line.trim().is_empty();
        if !comment && indent == 0 {
            flush(&mut out, &mut blocks, &mut pending);
            out.push_str(&line);
            out.push('\n');
        } else if comment {
            pending.push_str(&line);
            pending.push('\n');
        } else if indent == 2 {
            pending.push_str(&line);
            pending.push('\n');
            blocks.push(std::mem::take(&mut pending));
        } else {
            let last = blocks.last_mut().expect("a key above deeper lines");
            last.push_str(&pending);
            pending.clear();
            last.push_str(&line);
            last.push('\n');
        }
    }
    flush(&mut out, &mut blocks, &mut pending);
    out
}

#[test]
fn formatting_a_shuffled_spec_restores_it() {
    let files = committed();
    let messy: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| (n.clone(), shuffled(t)))
        .collect();
    assert_ne!(messy, files);
    // Same meaning out of order, and formatting puts it back as committed.
    assert_eq!(
        meaning(load_texts(&messy).unwrap()),
        meaning(load_texts(&files).unwrap())
    );
    let after = formatted(&messy);
    for ((name, a), (_, b)) in files.iter().zip(&after) {
        assert_eq!(comments(a), comments(b), "{name}: comments differ");
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn the_committed_spec_is_canonical_and_formatting_is_idempotent() {
    for (name, text) in committed() {
        let once = format(&text).unwrap();
        assert_eq!(format(&once).unwrap(), once, "{name}: not idempotent");
        assert_eq!(once, text, "{name}: run `vsmmu spec fmt`");
    }
}

const MESSY: &str = r#"# header

register/CR0:
  emulation: control
  fields:
    - {name: SMMUEN, bits: 0, description: "Enable"}
    # the queue
    - description: 'Command queue enable'
      bits: "3"
      name: CMDQEN
      values: {OFF: 0b0,
               ON: 0b1}
  spec: §6.3.9
  description: "Global control"
  page: 0
  offset: 0x20
  width: 32
  access: rw
  reset: 0
  ack: CR0ACK
  # closing remark
register/CR0ACK:
  spec: "§6.3.10"
  description: Global control acknowledge
  page: 0
  offset: 0x24
  width: 32
  access: ro
  reset: 0
  emulation: ack
  layout: CR0
command/CMD_SYNC:
  spec: "§4.7.3"
  description: Synchronise
  opcode: 0x46
  illegal:
    - {why: 'it, is odd', if: CS == 3}
  fields:
    - {name: CS, word: 0, bits: "13:12", description: Completion signal}
"#;

#[test]
fn a_messy_file_becomes_canonical_with_the_same_meaning() {
    let files = vec![("registers.yaml".to_string(), MESSY.to_string())];
    let out = formatted(&files);
    let text = &out[0].1;
    assert_eq!(
        meaning(load_texts(&files).unwrap()),
        meaning(load_texts(&out).unwrap())
    );
    assert_eq!(comments(MESSY), comments(text));
    assert!(
        text.contains(
            "register/CR0:\n  spec: \"§6.3.9\"\n  description: Global control\n  page: 0\n"
        ),
        "{text}"
    );
    assert!(text.contains("    - name: CMDQEN\n      bits: \"3\"\n      description: Command queue enable\n      values:\n        OFF: 0b0\n        ON: 0b1\n"), "{text}");
    assert!(
        text.contains("    - {if: \"CS == 3\", why: \"it, is odd\"}"),
        "{text}"
    );
    assert!(
        text.contains("        ON: 0b1\n  # closing remark\n\nregister/CR0ACK:"),
        "{text}"
    );
    assert_eq!(format(text).unwrap(), *text);
}
