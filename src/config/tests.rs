use std::path::Path;

use super::*;

const MINIMAL: &str = "
directory:
  source: { file: workers.csv }
  key: id
  email: mail
  attributes:
    id: { column: ID, type: string }
    mail: { column: Mail, type: string }
rules: { dir: rules }
";

fn load(text: &str) -> Result<Config, String> {
    Config::from_yaml(text, Path::new("conf/rosterd.yaml")).map_err(|e| e.to_string())
}

#[test]
fn paths_are_relative_to_the_config_file_and_defaults_apply() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.directory.source.file, Path::new("conf/workers.csv"));
    assert_eq!(c.rules.dir, Path::new("conf/rules"));
    assert_eq!(c.directory.source.format(), SourceFormat::Csv);
    assert_eq!(c.directory.max_bad_rows_percent, 5.0);
    assert!(c.targets.is_empty());
}

#[test]
fn unknown_fields_are_errors_with_their_place() {
    let e = load(&MINIMAL.replace("rules: { dir: rules }", "rules: { dir: rules, dri: x }"))
        .unwrap_err();
    assert!(e.contains("unknown field `dri`"), "{e}");
    assert!(e.contains("line 9"), "{e}");
}

#[test]
fn roles_must_name_string_attributes() {
    let e = load(&MINIMAL.replace("email: mail", "email: mial")).unwrap_err();
    assert_eq!(
        e,
        "conf/rosterd.yaml: directory.email: `mial` is not one of directory.attributes"
    );
    let e = load(&MINIMAL.replace(
        "mail: { column: Mail, type: string }",
        "mail: { column: Mail, type: number }",
    ))
    .unwrap_err();
    assert!(
        e.ends_with("directory.email: attribute `mail` must be of type string"),
        "{e}"
    );
}

#[test]
fn attribute_names_must_be_identifiers_and_not_reserved() {
    let e = load(&MINIMAL.replace(
        "    id: {",
        "    is_manager: { column: M, type: bool }\n    id: {",
    ))
    .unwrap_err();
    assert!(e.contains("`is_manager` is reserved"), "{e}");
    let e = load(&MINIMAL.replace(
        "    id: {",
        "    Cost-Center: { column: C, type: string }\n    id: {",
    ))
    .unwrap_err();
    assert!(
        e.contains("`Cost-Center` is not a valid attribute name"),
        "{e}"
    );
    let e = load(&MINIMAL.replace(
        "    id: {",
        "    tags: { column: T, type: string, separator: \",\" }\n    id: {",
    ))
    .unwrap_err();
    assert!(
        e.contains("`separator` is only for attributes of type list"),
        "{e}"
    );
}

#[test]
fn json_sources_are_recognised_by_extension() {
    let c = load(&MINIMAL.replace("workers.csv", "report.JSON")).unwrap();
    assert_eq!(c.directory.source.format(), SourceFormat::WorkdayJson);
}
