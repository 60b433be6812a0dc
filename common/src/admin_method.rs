//! Which role each Admin method needs and whether it is written to the
//! audit trail: the one table the collector's gate reads, and the one the
//! end-to-end tests call every method from. Here rather than in the
//! collector because it is part of what the wire promises a caller. A
//! method the proto has and this table lacks is refused by the gate for
//! everyone, and fails `every_proto_method_is_in_the_table`.

use crate::identity::Role;
use crate::proto::admin_server::SERVICE_NAME;

/// Whether a method changes something (or takes data out) and so leaves
/// an entry in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Reads,
    Acts,
}

macro_rules! admin_methods {
    ($($method:ident => $role:ident, $effect:ident,)*) => {
        /// An Admin RPC, named as in the proto.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AdminMethod {
            $($method,)*
        }

        impl AdminMethod {
            pub const ALL: &[AdminMethod] = &[$(AdminMethod::$method,)*];

            /// The method's name in the proto (`RevokeHost`).
            pub fn name(self) -> &'static str {
                match self {
                    $(AdminMethod::$method => stringify!($method),)*
                }
            }

            /// The least role that may call it.
            pub fn required_role(self) -> Role {
                match self {
                    $(AdminMethod::$method => Role::$role,)*
                }
            }

            /// Whether its calls are written to the audit trail.
            pub fn effect(self) -> Effect {
                match self {
                    $(AdminMethod::$method => Effect::$effect,)*
                }
            }
        }
    };
}

admin_methods! {
    ListHosts => Viewer, Reads,
    GetHost => Viewer, Reads,
    History => Viewer, Reads,
    Diff => Viewer, Reads,
    Drift => Viewer, Reads,
    FindKeys => Viewer, Reads,
    ListSweeps => Viewer, Reads,
    GetSweep => Viewer, Reads,
    ListBaselines => Viewer, Reads,
    ListAudit => Viewer, Reads,
    StartSweep => Operator, Acts,
    SetBaseline => Operator, Acts,
    ApproveBaseline => Operator, Acts,
    RevokeHost => Operator, Acts,
    ForgetHost => Operator, Acts,
    // Sends a test event to the configured receivers: an outside effect.
    NotifyTest => Operator, Acts,
    CreateToken => Admin, Acts,
    ListTokens => Admin, Reads,
    RevokeToken => Admin, Acts,
    // Takes the whole store out: who did is worth a record.
    Backup => Admin, Acts,
}

impl AdminMethod {
    /// The method a gRPC request path (`/driftwatch.v1.Admin/RevokeHost`)
    /// names; None for any other path.
    pub fn from_path(path: &str) -> Option<AdminMethod> {
        let name = path
            .strip_prefix('/')?
            .strip_prefix(SERVICE_NAME)?
            .strip_prefix('/')?;
        AdminMethod::ALL.iter().copied().find(|m| m.name() == name)
    }

    /// Its gRPC request path.
    pub fn path(self) -> String {
        format!("/{SERVICE_NAME}/{}", self.name())
    }
}

impl std::fmt::Display for AdminMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ADMIN_METHODS;

    /// The proto's method list comes from the compiled descriptor
    /// (proto/build.rs), so an RPC added there and not here fails this.
    #[test]
    fn every_proto_method_is_in_the_table() {
        let missing: Vec<&&str> = ADMIN_METHODS
            .iter()
            .filter(|name| AdminMethod::from_path(&format!("/{SERVICE_NAME}/{name}")).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "Admin RPCs without a required role in common/src/admin_method.rs: {missing:?}"
        );
        let extra: Vec<&str> = AdminMethod::ALL
            .iter()
            .map(|m| m.name())
            .filter(|n| !ADMIN_METHODS.contains(n))
            .collect();
        assert!(extra.is_empty(), "not in the proto: {extra:?}");
        assert_eq!(ADMIN_METHODS.len(), AdminMethod::ALL.len());
    }

    #[test]
    fn paths_round_trip_and_nothing_else_matches() {
        for m in AdminMethod::ALL {
            assert_eq!(AdminMethod::from_path(&m.path()), Some(*m));
        }
        for p in [
            "/driftwatch.v1.Admin/",
            "/driftwatch.v1.Admin/listHosts",
            "/driftwatch.v1.Admin/ListHosts/",
            "/driftwatch.v1.Agent/Report",
            "/driftwatch.v1.AdminX/ListHosts",
            "driftwatch.v1.Admin/ListHosts",
            "/driftwatch.v1.Admin/ListHosts?x",
        ] {
            assert_eq!(AdminMethod::from_path(p), None, "{p}");
        }
    }

    #[test]
    fn reads_are_open_to_viewers_and_writes_are_not() {
        use AdminMethod::*;
        for m in [
            StartSweep,
            SetBaseline,
            ApproveBaseline,
            RevokeHost,
            ForgetHost,
        ] {
            assert_eq!(m.required_role(), Role::Operator, "{m}");
        }
        for m in [CreateToken, ListTokens, RevokeToken, Backup] {
            assert_eq!(m.required_role(), Role::Admin, "{m}");
        }
        for m in AdminMethod::ALL {
            if m.required_role() == Role::Viewer {
                assert_eq!(m.effect(), Effect::Reads, "a viewer only reads: {m}");
            }
        }
    }
}
