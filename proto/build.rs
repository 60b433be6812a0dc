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
    // against the proto's own names (common/src/section/tests.rs).
    let descriptors = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("descriptors.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptors)
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
    Ok(())
}
