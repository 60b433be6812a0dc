use super::*;

fn ctx(root: &Path) -> Context {
    Context {
        fs: HostFs::new(root),
    }
}

#[test]
fn docker_host_unix_path_is_used_as_given() {
    let fs = HostFs::new("/srv/hostroot");
    let p = docker_socket(Some("unix:///run/user/1000/docker.sock"), &fs).unwrap();
    assert_eq!(p, PathBuf::from("/run/user/1000/docker.sock"));
}

#[test]
fn other_docker_host_schemes_are_a_section_error_naming_them() {
    let fs = HostFs::default();
    for host in [
        "tcp://10.0.0.5:2376",
        "ssh://admin@box",
        "npipe:////./pipe/docker_engine",
        "unix://relative.sock",
    ] {
        match docker_socket(Some(host), &fs) {
            Err(SectionError::Failed(why)) => {
                assert!(why.contains(host) && why.contains("unix"), "{why}")
            }
            other => panic!("{host}: {other:?}"),
        }
    }
}

#[test]
fn root_socket_wins_when_it_exists_and_links_stay_under_root() {
    let d = tempfile::tempdir().unwrap();
    // Default when the root has none.
    assert_eq!(
        docker_socket(None, &HostFs::new(d.path())).unwrap(),
        PathBuf::from("/var/run/docker.sock")
    );
    // Debian's /var/run -> /run, absolute: must resolve to <root>/run.
    std::fs::create_dir_all(d.path().join("run")).unwrap();
    std::fs::create_dir_all(d.path().join("var")).unwrap();
    std::os::unix::fs::symlink("/run", d.path().join("var/run")).unwrap();
    let _l = std::os::unix::net::UnixListener::bind(d.path().join("run/docker.sock")).unwrap();
    assert_eq!(
        docker_socket(None, &HostFs::new(d.path())).unwrap(),
        d.path().join("run/docker.sock")
    );
}

#[test]
fn a_missing_socket_is_unsupported() {
    let d = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/docker.sock", d.path().display());
    let mut c = ContainersCollector::new(Some(host));
    match c.collect(&ctx(d.path())) {
        Err(SectionError::Unsupported(why)) => assert!(why.contains("no Docker socket"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_socket_nobody_listens_on_is_unsupported() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("docker.sock");
    // Binding then dropping leaves the file behind, like a stopped daemon.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut c = ContainersCollector::new(Some(format!("unix://{}", path.display())));
    match c.collect(&ctx(d.path())) {
        Err(SectionError::Unsupported(why)) => {
            assert!(why.contains("no Docker daemon listening"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unsupported_scheme_becomes_an_error_section_not_a_panic() {
    let mut c = ContainersCollector::new(Some("tcp://127.0.0.1:2375".into()));
    let s = super::super::run_one(&mut c, &ctx(Path::new("/")));
    assert_eq!(s.status, "error");
    assert!(s.error.contains("tcp://127.0.0.1:2375"), "{}", s.error);
}
