use super::*;
use crate::testutil::fixture;

fn read_all(
    text: &str,
    wanted: Option<&HashSet<String>>,
) -> (Vec<String>, u64, Vec<(u32, String)>) {
    let mut r = IndexReader::new(wanted);
    for (i, l) in text.split_inclusive('\n').enumerate() {
        r.line(i as u32 + 1, l.as_bytes());
    }
    r.finish();
    let offers = r
        .offers
        .iter()
        .map(|o| format!("{} {} {}", o.name, o.arch, o.version))
        .collect();
    (offers, r.stanzas, r.problems)
}

/// Real stanzas of bookworm-security's index (tests/fixtures/updates,
/// SOURCES.md): every stanza read, only the wanted ones kept.
#[test]
fn a_real_index_gives_its_offers() {
    let text = fixture("updates/security_Packages.excerpt");
    let (all, n, bad) = read_all(&text, None);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(n, 5);
    assert_eq!(
        all,
        [
            "apt amd64 2.6.2",
            "libbrotli1 amd64 1.0.9-2+deb12u1",
            "ca-certificates all 20250419~deb12u2",
            "jq amd64 1.6-2.1+deb12u3",
            "krb5-locales all 1.20.1-2+deb12u5",
        ]
    );
    let wanted: HashSet<String> = ["jq".to_string()].into();
    assert_eq!(
        read_all(&text, Some(&wanted)).0,
        ["jq amd64 1.6-2.1+deb12u3"]
    );
}

#[test]
fn malformed_stanzas_and_lines_have_numbers() {
    let text = "Package: a\nVersion: 1\n\nbroken line\nPackage: b\n\nDescription: no name\n";
    let (offers, n, bad) = read_all(text, None);
    assert_eq!(offers, ["a  1"]);
    assert_eq!(n, 3);
    assert_eq!(
        bad,
        [
            (4, "not a 'Field: value' line".to_string()),
            (4, "stanza without Package or Version".to_string()),
            (7, "stanza without Package or Version".to_string()),
        ]
    );
}

#[test]
fn real_release_headers_say_where_indexes_come_from() {
    let sec = release(&fixture("updates/security_InRelease.head"));
    assert_eq!(
        (
            sec.origin.as_str(),
            sec.label.as_str(),
            sec.suite.as_str(),
            sec.codename.as_str()
        ),
        (
            "Debian",
            "Debian-Security",
            "oldstable-security",
            "bookworm-security"
        )
    );
    assert!(sec.is_security());
    // Wed, 02 Dec 2026 23:13:43 UTC
    assert_eq!(sec.date_ms, Some(1_796_253_223_000));
    let upd = release(&fixture("updates/bookworm-updates_InRelease.head"));
    assert_eq!(upd.suite, "oldstable-updates");
    assert!(!upd.is_security(), "-updates is not security");
    let main = release(&fixture("updates/bookworm_InRelease.head"));
    assert_eq!(
        (main.codename.as_str(), main.is_security()),
        ("bookworm", false)
    );
    assert!(name_says_security(
        "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages"
    ));
    assert!(!name_says_security(
        "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages"
    ));
}

#[test]
fn dates() {
    assert_eq!(rfc2822_ms("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
    assert_eq!(
        rfc2822_ms("Sat, 29 Feb 2020 12:00:00 +0100"),
        Some(1_582_974_000_000)
    );
    assert_eq!(
        rfc2822_ms("01 Mar 2020 00:00:00 GMT"),
        Some(1_583_020_800_000)
    );
    assert_eq!(rfc2822_ms("Sat, 29 Foo 2020 12:00:00 UTC"), None);
    assert_eq!(rfc2822_ms("Sat, 29 Feb 2020 12:00:00 EST"), None);
    assert_eq!(rfc2822_ms(""), None);
}
