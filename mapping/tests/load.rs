//! Loading files and directories from disk.

use std::fs;

use mapping::{load_dir, load_file};

fn env(_: &str) -> Option<String> {
    None
}

const VALID: &str = "destination: crm\nconnector: webhook\nfields:\n  a: { from: userName }\n";

#[test]
fn load_dir_reports_duplicates_and_broken_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = dir.path();
    let write = |name: &str, text: &str| {
        fs::write(p.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    write("a-crm.yaml", VALID);
    write("b-dup.yml", &format!("# same name again\n{VALID}"));
    write(
        "c-broken.yaml",
        "destination: cdp\nconnector: segment\nfields:\n  x: { frm: a }\n",
    );
    write("d-other.yaml", &VALID.replace("crm", "other"));
    write("schema.json", "{ not yaml at all");
    write("notes.txt", "destination: nope");
    fs::create_dir(p.join("sub.yaml")).unwrap_or_else(|e| panic!("{e}"));

    let (dests, errors) = load_dir(p, &env);
    let names: Vec<&str> = dests.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["crm", "other"]);
    assert_eq!(dests[0].file, p.join("a-crm.yaml"));

    let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let b = p.join("b-dup.yml");
    let a = p.join("a-crm.yaml");
    let c = p.join("c-broken.yaml");
    assert_eq!(
        msgs,
        [
            format!(
                "{}:2:14: destination: destination \"crm\" is already defined in {}:1:14",
                b.display(),
                a.display()
            ),
            format!(
                "{}:4:8: fields.x.frm: unknown key \"frm\"; expected one of from, value, \
                 transform, default, map, consent",
                c.display()
            ),
            format!(
                "{}:4:6: fields.x: needs `from` (a SCIM value path) or `value` (a constant)",
                c.display()
            ),
        ]
    );
}

#[test]
fn load_file_io_error_is_at_1_1() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("missing.yaml");
    let errors = load_file(&missing, &env).err().unwrap_or_default();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].col), (1, 1));
    assert!(errors[0].reason.starts_with("cannot read file: "));
}

#[test]
fn load_dir_missing_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (dests, errors) = load_dir(&dir.path().join("nope"), &env);
    assert!(dests.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].reason.starts_with("cannot read directory: "));
}

#[test]
fn load_file_reads_and_parses() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("crm.yaml");
    fs::write(&f, VALID).unwrap_or_else(|e| panic!("{e}"));
    let d = load_file(&f, &env).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(d.name, "crm");
    assert_eq!(d.file, f);
}
