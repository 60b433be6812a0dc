//! From parsed files to rules: aliases resolved across every file (sudo
//! keeps one alias table for all of them), one rule per principal and
//! command, tags and run-as carried along a command list the way sudo
//! does, and NOPASSWD from the tag or from `Defaults !authenticate`.

use std::collections::{BTreeMap, HashMap};

use driftwatch_common::proto::{SudoDefault, SudoRule};

use super::{AliasKind, Entry, Member};

/// Aliases within aliases deeper than this are a loop.
const MAX_ALIAS_DEPTH: usize = 16;

/// Shells and su: running one as root is root.
const ROOT_SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "fish", "su", "csh", "tcsh",
];

#[derive(Debug, Default)]
pub struct Expanded {
    pub rules: Vec<SudoRule>,
    pub defaults: Vec<SudoDefault>,
    /// (file, line, why): an alias defined twice is what visudo refuses.
    pub errors: Vec<(String, usize, String)>,
}

type Aliases = HashMap<(AliasKind, String), Vec<Member>>;

fn resolve(
    aliases: &Aliases,
    kind: AliasKind,
    list: &[Member],
    depth: usize,
    out: &mut Vec<String>,
) {
    for m in list {
        match aliases.get(&(kind, m.name.clone())) {
            Some(inner) if depth < MAX_ALIAS_DEPTH => {
                let mut sub = Vec::new();
                resolve(aliases, kind, inner, depth + 1, &mut sub);
                for s in sub {
                    // A negated alias negates each of its members.
                    out.push(match (m.negated, s.strip_prefix('!')) {
                        (true, Some(plain)) => plain.to_string(),
                        (true, None) => format!("!{s}"),
                        (false, _) => s,
                    });
                }
            }
            _ => out.push(if m.negated {
                format!("!{}", m.name)
            } else {
                m.name.clone()
            }),
        }
    }
}

fn opposite(tag: &str) -> String {
    match tag {
        "PASSWD" => "NOPASSWD".into(),
        "EXEC" => "NOEXEC".into(),
        "FOLLOW" => "NOFOLLOW".into(),
        "MAIL" => "NOMAIL".into(),
        t => match t.strip_prefix("NO") {
            Some(rest) => rest.to_string(),
            None => format!("NO{t}"),
        },
    }
}

/// What `authenticate` is where it was set: later settings win, and a
/// narrower binding wins over a wider one (sudo applies generic, then
/// user, run-as and command Defaults).
#[derive(Default)]
struct Auth {
    global: Option<bool>,
    user: BTreeMap<String, bool>,
    runas: BTreeMap<String, bool>,
    cmnd: BTreeMap<String, bool>,
}

impl Auth {
    fn needs_password(&self, principal: &str, runas: &[String], cmnd: &str) -> bool {
        let by_runas = runas.iter().find_map(|r| self.runas.get(r).copied());
        self.cmnd
            .get(cmnd)
            .copied()
            .or(by_runas)
            .or(self.user.get(principal).copied())
            .or(self.global)
            .unwrap_or(true)
    }
}

fn grants_root(command: &str, runas_users: &[String]) -> bool {
    let as_root = runas_users
        .iter()
        .any(|u| u == "ALL" || u == "root" || u == "#0");
    let base = command
        .split_whitespace()
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    as_root && (command == "ALL" || ROOT_SHELLS.contains(&base))
}

/// Rules and Defaults of the entries of every file, each with its file's
/// path, in the order sudo reads them (an included file's entries where
/// its include line stands).
pub fn expand(entries: &[(String, Entry)]) -> Expanded {
    let mut x = Expanded::default();
    let mut aliases: Aliases = HashMap::new();
    {
        for (path, e) in entries {
            if let Entry::Alias {
                line,
                kind,
                name,
                members,
            } = e
            {
                match aliases.entry((*kind, name.clone())) {
                    std::collections::hash_map::Entry::Occupied(_) => x.errors.push((
                        path.clone(),
                        *line,
                        format!("Alias {name:?} already defined"),
                    )),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(members.clone());
                    }
                }
            }
        }
    }
    let mut auth = Auth::default();
    {
        for (path, e) in entries {
            let Entry::Defaults {
                line,
                binding,
                targets,
                settings,
            } = e
            else {
                continue;
            };
            let kind = match *binding {
                "@" => AliasKind::Host,
                ">" => AliasKind::Runas,
                "!" => AliasKind::Cmnd,
                _ => AliasKind::User,
            };
            let mut names = Vec::new();
            resolve(&aliases, kind, targets, 0, &mut names);
            let scope = if binding.is_empty() {
                String::new()
            } else {
                format!("{binding}{}", names.join(","))
            };
            for (name, value) in settings {
                let flag = match name.as_str() {
                    "authenticate" => Some(true),
                    "!authenticate" => Some(false),
                    _ => None,
                };
                if let Some(flag) = flag {
                    match *binding {
                        "" => auth.global = Some(flag),
                        ":" => names
                            .iter()
                            .for_each(|n| _ = auth.user.insert(n.clone(), flag)),
                        ">" => names
                            .iter()
                            .for_each(|n| _ = auth.runas.insert(n.clone(), flag)),
                        "!" => names
                            .iter()
                            .for_each(|n| _ = auth.cmnd.insert(n.clone(), flag)),
                        // Per-host Defaults: which host we are is the
                        // collector's question; the rule's hosts say it.
                        _ => {}
                    }
                }
                x.defaults.push(SudoDefault {
                    file: path.clone(),
                    line: *line as u32,
                    scope: scope.clone(),
                    name: name.clone(),
                    value: value.clone(),
                });
            }
        }
    }
    {
        for (path, e) in entries {
            let Entry::UserSpec { line, users, parts } = e else {
                continue;
            };
            let mut principals = Vec::new();
            resolve(&aliases, AliasKind::User, users, 0, &mut principals);
            for (hosts, cmnds) in parts {
                let mut host_names = Vec::new();
                resolve(&aliases, AliasKind::Host, hosts, 0, &mut host_names);
                // sudo's runas_default: root when no run-as list is given.
                let mut runas_users = vec!["root".to_string()];
                let mut runas_groups: Vec<String> = Vec::new();
                let mut tags: Vec<String> = Vec::new();
                for spec in cmnds {
                    if let (Some(u), Some(g)) = (&spec.runas_users, &spec.runas_groups) {
                        runas_users.clear();
                        resolve(&aliases, AliasKind::Runas, u, 0, &mut runas_users);
                        runas_groups.clear();
                        resolve(&aliases, AliasKind::Runas, g, 0, &mut runas_groups);
                    }
                    for t in &spec.tags {
                        let opp = opposite(t);
                        tags.retain(|x| x != t && *x != opp);
                        tags.push(t.clone());
                    }
                    let mut commands = Vec::new();
                    resolve(
                        &aliases,
                        AliasKind::Cmnd,
                        std::slice::from_ref(&spec.cmnd),
                        0,
                        &mut commands,
                    );
                    for principal in &principals {
                        for command in &commands {
                            let tag_says = tags.iter().rev().find_map(|t| match t.as_str() {
                                "NOPASSWD" => Some(true),
                                "PASSWD" => Some(false),
                                _ => None,
                            });
                            let nopasswd = tag_says.unwrap_or_else(|| {
                                !auth.needs_password(principal, &runas_users, command)
                            });
                            let mut all_tags = tags.clone();
                            all_tags.extend(spec.options.iter().cloned());
                            x.rules.push(SudoRule {
                                file: path.clone(),
                                line: *line as u32,
                                principal: principal.clone(),
                                hosts: host_names.clone(),
                                runas_users: runas_users.clone(),
                                runas_groups: runas_groups.clone(),
                                command: command.clone(),
                                nopasswd,
                                tags: all_tags,
                                grants_root: !command.starts_with('!')
                                    && !principal.starts_with('!')
                                    && grants_root(command, &runas_users),
                            });
                        }
                    }
                }
            }
        }
    }
    x
}
