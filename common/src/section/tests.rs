use prost::Message;

use super::*;
use crate::stable::stable_body;
use crate::testgen::{Gen, section};

/// The fields of the proto's `Section.body` oneof as protoc read them, in
/// field order.
fn proto_section_bodies() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
        .expect("the schema's descriptors decode");
    let section = set
        .file
        .iter()
        .filter(|f| f.package() == "driftwatch.v1")
        .flat_map(|f| &f.message_type)
        .find(|m| m.name() == "Section")
        .expect("driftwatch.v1.Section in the schema");
    let body = section
        .oneof_decl
        .iter()
        .position(|o| o.name() == "body")
        .expect("Section has a oneof body") as i32;
    let mut fields: Vec<_> = section
        .field
        .iter()
        .filter(|f| f.oneof_index == Some(body))
        .collect();
    fields.sort_by_key(|f| f.number());
    fields.iter().map(|f| f.name().to_string()).collect()
}

/// The registry and the proto name the same sections in the same order: a
/// oneof field without a kind (or a kind the proto lacks) fails here, and
/// `of_body` does not compile without an arm for it.
#[test]
fn every_proto_section_body_is_a_kind_and_every_kind_a_body() {
    let names: Vec<&str> = SectionKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(proto_section_bodies(), names);
}

/// A generated body of each kind is that kind, is named so in `--json`
/// (serde's name for the oneof variant) and its section carries the name.
#[test]
fn every_kind_has_a_body_named_like_it() {
    let mut g = Gen::new(7);
    for &kind in SectionKind::ALL {
        let s = section(&mut g, kind);
        let body = s.body.as_ref().expect("generated sections have a body");
        assert_eq!(SectionKind::of_body(body), kind);
        assert_eq!(SectionKind::of(&s), Some(kind));
        let json = serde_json::to_value(body).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, [kind.name()], "{kind}");
    }
}

/// `has_volatile_values` says what the stable form does: a kind that
/// claims none must come out of `stable_body` unchanged, and one that
/// claims some must lose something on generated data (which fills every
/// volatile field).
#[test]
fn volatile_values_are_declared_as_the_stable_form_clears_them() {
    for &kind in SectionKind::ALL {
        let changed = (0..200).any(|seed| {
            let s = section(&mut Gen::new(seed), kind);
            let body = s.body.unwrap();
            stable_body(&body) != body
        });
        assert_eq!(changed, kind.has_volatile_values(), "{kind}");
    }
}

#[test]
fn names_parse_exactly_and_unknown_ones_are_named() {
    for &kind in SectionKind::ALL {
        assert_eq!(kind.name().parse::<SectionKind>(), Ok(kind));
        assert_eq!(SectionKind::ALL[kind.index()], kind);
    }
    assert_eq!(
        SectionKind::check_names(&["raid".into(), "keys".into(), "x".into()])
            .unwrap_err()
            .to_string(),
        "unknown section \"keys\": use host, processes, ssh_keys, log_config, raid, packages, containers, accounts, sudoers, listening, updates"
    );
    assert!(SectionKind::check_names(&[]).is_ok());
    assert!("SSH_KEYS".parse::<SectionKind>().is_err());
}
