use chrono::NaiveDate;

use super::*;

const FILE: &str = "\
groups:
  # The Security division's Slack group.
  - name: security-slack
    kind: hybrid
    rule: division == \"Security\"
    include:
      - email: ben.hansen@example.com   # the CISO's assistant
        reason: Executive assistant to the CISO
        ticket: AR-1234
        expires: 2027-01-31
      - E000301
    exclude:
      - id: E000222
    push: [slack]

  - name: auditors
    kind: manual
    members: []
";

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn grant(who: Who) -> Grant {
    Grant {
        who,
        reason: Some("Needs: the incident channel, \"now\"".into()),
        ticket: Some("REQ-7".into()),
        expires: Some(day("2027-03-07")),
        added_by: Some("ciso@example.com".into()),
        reviewed: Some(day("2026-12-07")),
    }
}

#[test]
fn an_entry_goes_after_the_last_one_of_its_list_and_nothing_else_moves() {
    let out = add_entry(
        FILE,
        "security-slack",
        "include",
        &grant(Who::Key("E000999".into())),
    )
    .unwrap();
    let expected = FILE.replace(
        "      - E000301\n",
        "      - E000301\n      - id: E000999\n        reason: \"Needs: the incident channel, \\\"now\\\"\"\n        ticket: REQ-7\n        expires: 2027-03-07\n        added_by: ciso@example.com\n        reviewed: 2026-12-07\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn an_empty_list_and_a_missing_one_become_block_lists() {
    let g = Grant {
        reason: None,
        added_by: None,
        reviewed: None,
        ..grant(Who::Email("ann@example.com".into()))
    };
    let out = add_entry(FILE, "auditors", "members", &g).unwrap();
    assert!(
        out.ends_with("    members:\n      - email: ann@example.com\n        ticket: REQ-7\n        expires: 2027-03-07\n"),
        "{out}"
    );
    let without = FILE.replace("    members: []\n", "");
    let out = add_entry(&without, "auditors", "members", &g).unwrap();
    assert!(out.ends_with("    kind: manual\n    members:\n      - email: ann@example.com\n        ticket: REQ-7\n        expires: 2027-03-07\n"), "{out}");
    // The file's last line without its newline.
    let out = add_entry(without.trim_end(), "auditors", "members", &g).unwrap();
    assert!(out.ends_with("    kind: manual\n    members:\n      - email: ann@example.com\n        ticket: REQ-7\n        expires: 2027-03-07\n"), "{out}");
}

#[test]
fn a_worker_already_named_is_refused_by_id_or_by_email_in_any_case() {
    for who in [
        Who::Email("Ben.Hansen@example.com".into()),
        Who::Key("E000301".into()),
    ] {
        assert!(matches!(
            add_entry(FILE, "security-slack", "include", &grant(who)),
            Err(EditError::Exists { .. })
        ));
    }
    assert_eq!(
        add_entry(FILE, "nobody", "include", &grant(Who::Key("E1".into()))),
        Err(EditError::NoGroup("nobody".into()))
    );
}

#[test]
fn removing_takes_the_entry_and_its_comment_and_the_last_one_leaves_an_empty_list() {
    let out = remove_entry(
        FILE,
        "security-slack",
        "include",
        &Who::Email("ben.hansen@example.com".into()),
    )
    .unwrap();
    assert_eq!(
        out,
        FILE.replace("      - email: ben.hansen@example.com   # the CISO's assistant\n        reason: Executive assistant to the CISO\n        ticket: AR-1234\n        expires: 2027-01-31\n", "")
    );
    let out = remove_entry(
        &out,
        "security-slack",
        "include",
        &Who::KeyOrEmail("E000301".into()),
    )
    .unwrap();
    assert!(out.contains("    include: []\n    exclude:\n"), "{out}");
    assert!(matches!(
        remove_entry(
            &out,
            "security-slack",
            "include",
            &Who::Key("E000301".into())
        ),
        Err(EditError::NoEntry { .. })
    ));
}

#[test]
fn keeping_sets_the_dates_in_place_or_adds_them() {
    let out = keep_entry(
        FILE,
        "security-slack",
        "include",
        &Who::Email("ben.hansen@example.com".into()),
        Some(day("2027-04-30")),
        day("2026-12-07"),
    )
    .unwrap();
    assert_eq!(
        out,
        FILE.replace(
            "        expires: 2027-01-31\n",
            "        expires: 2027-04-30\n        reviewed: 2026-12-07\n"
        )
    );
    let again = keep_entry(
        &out,
        "security-slack",
        "include",
        &Who::Email("ben.hansen@example.com".into()),
        None,
        day("2027-01-02"),
    )
    .unwrap();
    assert_eq!(
        again,
        out.replace("reviewed: 2026-12-07", "reviewed: 2027-01-02")
    );
    // A bare entry becomes a mapping.
    let out = keep_entry(
        FILE,
        "security-slack",
        "include",
        &Who::KeyOrEmail("E000301".into()),
        Some(day("2027-02-01")),
        day("2026-12-07"),
    )
    .unwrap();
    assert!(
        out.contains("      - id: E000301\n        expires: 2027-02-01\n        reviewed: 2026-12-07\n    exclude:"),
        "{out}"
    );
}

#[test]
fn windows_line_endings_stay_windows_line_endings() {
    let crlf = FILE.replace('\n', "\r\n");
    let out = add_entry(
        &crlf,
        "security-slack",
        "include",
        &grant(Who::Key("E000999".into())),
    )
    .unwrap();
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
    let out = keep_entry(
        &out,
        "security-slack",
        "include",
        &Who::Key("E000999".into()),
        Some(day("2027-05-01")),
        day("2026-12-08"),
    )
    .unwrap();
    assert!(out.contains("expires: 2027-05-01\r\n        added_by: ciso@example.com\r\n        reviewed: 2026-12-08\r\n"), "{out:?}");
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
}

#[test]
fn a_flow_list_with_entries_is_refused_not_rewritten() {
    let flow = FILE.replace("    members: []\n", "    members: [E000001, E000002]\n");
    assert!(matches!(
        add_entry(&flow, "auditors", "members", &grant(Who::Key("E1".into()))),
        Err(EditError::Flow { .. })
    ));
    assert!(matches!(
        remove_entry(
            &flow,
            "auditors",
            "members",
            &Who::KeyOrEmail("E000001".into())
        ),
        Err(EditError::Flow { .. })
    ));
}

#[test]
fn what_is_written_reads_back_as_written() {
    let odd = Grant {
        reason: Some("yes: a \"quote\", a # hash, a tab\t and ünïcödé\nand a second line".into()),
        ticket: Some("123".into()),
        added_by: Some("true".into()),
        ..grant(Who::Key("0042".into()))
    };
    let out = add_entry(FILE, "security-slack", "include", &odd).unwrap();
    let group = File::parse(&out, "security-slack").unwrap();
    let (_, list) = group.list("include").unwrap();
    let NodeKind::Seq(items) = &list.kind else {
        panic!()
    };
    let last = items.last().unwrap();
    let get = |k: &str| field(last, k).and_then(scalar).map(str::to_string);
    assert_eq!(get("id").as_deref(), Some("0042"));
    assert_eq!(get("reason"), odd.reason);
    assert_eq!(get("ticket").as_deref(), Some("123"));
    assert_eq!(get("added_by").as_deref(), Some("true"));
    // Quoted, so that they stay strings.
    for k in ["id", "ticket", "added_by"] {
        let NodeKind::Scalar(s) = &field(last, k).unwrap().kind else {
            panic!()
        };
        assert!(!s.plain, "{k} was written plain");
    }
}
