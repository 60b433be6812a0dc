//! Compiles the driftwatch protobuf schema with a vendored protoc, so a fresh
//! machine needs nothing but cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the
    // environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc);
    }
    let protos = std::fs::read_dir("driftwatch/v1")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    // The schema as protoc read it, for tests that check the code's tables
    // against the proto's own names (common/src/section/tests.rs), and for
    // the generated method lists below.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor = out.join("descriptors.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor)
        .type_attribute(
            ".driftwatch.v1",
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        .message_attribute(".driftwatch.v1", "#[serde(default)]")
        .type_attribute(
            ".driftwatch.v1.Section.body",
            "#[serde(rename_all = \"snake_case\")]",
        )
        .compile_protos(&protos, &[std::path::PathBuf::from(".")])?;
    write_method_names(&descriptor, &out.join("methods.rs"))?;
    Ok(())
}

/// Every service's method names, read from the compiled descriptor: the
/// collector checks its authorization table against the Admin list, so an
/// RPC added to the proto without a required role fails a test.
fn write_method_names(
    descriptor: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use prost::Message;
    let fds = tonic_prost_build::FileDescriptorSet::decode(std::fs::read(descriptor)?.as_slice())?;
    let mut code = String::new();
    for file in &fds.file {
        for service in &file.service {
            let name = service.name();
            let methods: Vec<String> = service
                .method
                .iter()
                .map(|m| format!("{:?}", m.name()))
                .collect();
            code.push_str(&format!(
                "/// The methods of `{}.{name}`, in proto order.\npub const {}_METHODS: &[&str] = &[{}];\n",
                file.package(),
                name.to_uppercase(),
                methods.join(", ")
            ));
        }
    }
    std::fs::write(out, code)?;
    Ok(())
}
