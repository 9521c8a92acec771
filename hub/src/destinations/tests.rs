use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn mapping(name: &str, extra: &str) -> String {
    format!(
        "destination: {name}\nconnector: webhook\nsettings:\n  url: http://127.0.0.1:9/{name}\n  \
         secret: {SECRET}\n{extra}fields:\n  email: {{ from: userName }}\n"
    )
}

fn vocab() -> Vocabulary {
    Vocabulary {
        purposes: vec!["marketing_email".into()],
        brands: vec![],
    }
}

#[test]
fn a_connector_is_rebuilt_only_when_its_own_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), mapping("a", "")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), mapping("b", "")).unwrap();
    let (first, errors) = reload(dir.path(), &DestinationSet::default(), &vocab());
    assert!(errors.is_empty(), "{errors:?}");
    // Another file changes: a keeps its connector (and any state in it).
    std::fs::write(
        dir.path().join("b.yaml"),
        mapping("b", "on_delete: suppress\n"),
    )
    .unwrap();
    let (second, _) = reload(dir.path(), &first, &vocab());
    assert!(Arc::ptr_eq(
        first.get("a").unwrap(),
        second.get("a").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        first.get("b").unwrap(),
        second.get("b").unwrap()
    ));
    // Its own file changes: rebuilt.
    std::fs::write(
        dir.path().join("a.yaml"),
        mapping("a", "on_delete: suppress\n"),
    )
    .unwrap();
    let (third, _) = reload(dir.path(), &second, &vocab());
    assert!(!Arc::ptr_eq(
        second.get("a").unwrap(),
        third.get("a").unwrap()
    ));
    assert!(Arc::ptr_eq(
        second.get("b").unwrap(),
        third.get("b").unwrap()
    ));
}

#[test]
fn identity_fields_a_connector_needs_must_be_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let text = "destination: hs\nconnector: hubspot\nsettings:\n  token: pat-test\n\
                fields:\n  firstname: { from: name.givenName }\n";
    std::fs::write(dir.path().join("hs.yaml"), text).unwrap();
    let (ok, errors) = check_dir(dir.path(), &vocab());
    assert!(ok.is_empty());
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("hs.yaml:"), "{text}");
    assert!(
        text.contains("\"email\""),
        "names the missing identity field: {text}"
    );
}
